#include "io/atomic_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <unistd.h>

namespace caustic {

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0)
    return "unknown-host";
  return buf;
}

std::string temporaryName(const std::string& path) {
  // Unique per process (host and process id): two commands writing into one directory never
  // share a temporary, and a leftover names the process that left it.
  const std::filesystem::path p(path);
  return (p.parent_path() / ("." + p.filename().string() + "." + hostName() + "-" +
                             std::to_string(static_cast<long>(getpid())) + ".tmp"))
      .string();
}

void commitFile(const std::string& tmp, const std::string& path) {
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
}

void writeTextFile(const std::string& path, const std::string& text) {
  const std::string tmp = temporaryName(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
    out << text;
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw std::runtime_error("error while writing " + tmp + " (disk full?)");
    }
  }
  commitFile(tmp, path);
}

void makeDirectories(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    throw std::runtime_error("cannot create output directory " + dir + ": " + ec.message());
  if (access(dir.c_str(), W_OK) != 0)
    throw std::runtime_error("output directory " + dir +
                             " is not writable: " + std::strerror(errno));
}

} // namespace caustic
