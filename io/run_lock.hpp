#pragma once
// A lock on an output directory, so that two commands started into one directory cannot mix
// their files. <dir>/.caustic.lock holds the holder's host, process id, command and start
// time. A lock whose holder is gone (same host, no such process, or the process id now belongs
// to a program that is not caustic) is stale and is taken over; a lock from another host cannot
// be checked and is refused with the file to remove if that run is known to be gone.
#include <string>

namespace caustic {

class DirectoryLock {
public:
  DirectoryLock() = default;
  // Creates `dir` if needed and takes its lock (single process). Throws ParamError naming the
  // holder if a live process holds it. `note` (may be null) receives a line about a stale lock
  // that was taken over.
  static DirectoryLock acquire(const std::string& dir, const std::string& command,
                               std::string* note);
  DirectoryLock(DirectoryLock&& o) noexcept : _path(std::move(o._path)) { o._path.clear(); }
  DirectoryLock& operator=(DirectoryLock&& o) noexcept;
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  ~DirectoryLock() { release(); }
  void release();
  bool held() const { return !_path.empty(); }
  const std::string& path() const { return _path; }

private:
  std::string _path;
};

// The lock file's name in a directory.
std::string lockFileName(const std::string& dir);

} // namespace caustic
