#include "io/text_file.hpp"

#include "io/params.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace caustic {

std::string readTextFile(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw ParamError(what + " \"" + path + "\": is a directory, not a file");
  std::ifstream in(path);
  if (!in)
    throw ParamError(what + " \"" + path + "\": cannot be opened");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad())
    throw ParamError(what + " \"" + path + "\": cannot be read");
  return ss.str();
}

} // namespace caustic
