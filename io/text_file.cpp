#include "io/text_file.hpp"

#include "io/params.hpp"

#include <fstream>
#include <sstream>

namespace caustic {

std::string readTextFile(const std::string& path, const std::string& what) {
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
