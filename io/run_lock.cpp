#include "io/run_lock.hpp"

#include "io/atomic_file.hpp"
#include "io/params.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace caustic {

namespace {

struct Holder {
  std::string host, command, since;
  long pid = -1;
  bool parsed = false;
};

Holder readHolder(const std::string& path) {
  Holder h;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq == std::string::npos)
      continue;
    const std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    if (k == "host")
      h.host = v;
    else if (k == "pid")
      h.pid = std::atol(v.c_str());
    else if (k == "command")
      h.command = v;
    else if (k == "since")
      h.since = v;
  }
  h.parsed = !h.host.empty() && h.pid > 0;
  return h;
}

// Whether process `pid` on this host is alive and is a caustic (its command line names it).
bool aliveCaustic(long pid) {
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
    return false;
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  if (!cmd)
    return true; // cannot tell (no /proc): assume alive
  std::string text((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
  return text.find("caustic") != std::string::npos;
}

std::string describe(const Holder& h) {
  return "pid " + std::to_string(h.pid) + " on host " + h.host +
         (h.command.empty() ? "" : " (" + h.command + ")") +
         (h.since.empty() ? "" : " since " + h.since);
}

} // namespace

std::string lockFileName(const std::string& dir) {
  return (std::filesystem::path(dir) / ".caustic.lock").string();
}

DirectoryLock& DirectoryLock::operator=(DirectoryLock&& o) noexcept {
  if (this != &o) {
    release();
    _path = std::move(o._path);
    o._path.clear();
  }
  return *this;
}

void DirectoryLock::release() {
  if (!_path.empty()) {
    std::remove(_path.c_str());
    _path.clear();
  }
}

DirectoryLock DirectoryLock::acquire(const std::string& dir, const std::string& command,
                                     std::string* note) {
  makeDirectories(dir);
  const std::string path = lockFileName(dir);
  const std::string host = hostName();
  const long pid = static_cast<long>(::getpid());
  char since[32] = {};
  const std::time_t now = std::time(nullptr);
  std::strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::ostringstream text;
  text << "host=" << host << "\npid=" << pid << "\ncommand=" << command << "\nsince=" << since
       << "\n";
  // The lock is created complete under a unique name and linked to its final name: link()
  // fails if the name exists, so exactly one process gets it.
  const std::string tmp = temporaryName(path);
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text.str();
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw ParamError("output directory " + dir + ": cannot write its lock file " + tmp);
    }
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (::link(tmp.c_str(), path.c_str()) == 0) {
      std::remove(tmp.c_str());
      DirectoryLock lock;
      lock._path = path;
      return lock;
    }
    const int err = errno;
    if (err != EEXIST) {
      std::remove(tmp.c_str());
      throw ParamError("output directory " + dir + ": cannot create the lock " + path + " (" +
                       std::strerror(err) + ")");
    }
    Holder h = readHolder(path);
    // A holder on this host that is gone, or whose pid is ours (a killed run's pid reused by
    // this process: we do not hold the lock yet), is stale.
    auto isStale = [&](const Holder& x) {
      return x.parsed && x.host == host && (x.pid == pid || !aliveCaustic(x.pid));
    };
    bool stale = isStale(h);
    // Taking over is serialised between the processes of this host (stale locks are only taken
    // over on their own host) by an flock on the directory, and the holder is read again under
    // it: of two commands that found the same stale lock, the second then finds the first's
    // live one and is refused, instead of removing it.
    int dirfd = -1;
    if (stale) {
      dirfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
      if (dirfd >= 0 && ::flock(dirfd, LOCK_EX) == 0) {
        h = readHolder(path);
        stale = isStale(h) || !std::filesystem::exists(path);
      }
    }
    struct DirUnlock {
      int fd;
      ~DirUnlock() {
        if (fd >= 0)
          ::close(fd); // releases the flock
      }
    } dir_unlock{dirfd};
    if (stale && !std::filesystem::exists(path)) {
      // Released meanwhile: try again from the start.
      if (::link(tmp.c_str(), path.c_str()) == 0) {
        std::remove(tmp.c_str());
        DirectoryLock lock;
        lock._path = path;
        return lock;
      }
      h = readHolder(path);
      stale = false;
    }
    if (!stale || attempt == 1) {
      std::remove(tmp.c_str());
      if (!h.parsed)
        throw ParamError("output directory " + dir + " is locked (" + path +
                         ", unreadable); another command may be writing there. If none is, "
                         "remove " + path);
      throw ParamError("output directory " + dir + " is in use by " + describe(h) +
                       "; choose another directory, or wait for it" +
                       (h.host == host ? std::string()
                                       : " (if that run is gone, remove " + path + ")"));
    }
    if (note)
      *note = "took over the stale lock of " + describe(h) + " (no such process)";
    std::remove(path.c_str());
    if (::link(tmp.c_str(), path.c_str()) == 0) { // still under the directory's flock
      std::remove(tmp.c_str());
      DirectoryLock lock;
      lock._path = path;
      return lock;
    }
  }
  std::remove(tmp.c_str());
  throw ParamError("output directory " + dir + ": cannot take its lock " + path);
}

} // namespace caustic
