#pragma once
// Outputs are written under a temporary name in the same directory and renamed when complete,
// so a final name never holds a half-written file.
#include <string>

namespace caustic {

// Temporary name for `path` in the same directory, unique to this process:
// .<name>.<host>-<pid>.tmp (parallel writers use rank 0's).
std::string temporaryName(const std::string& path);
// This machine's host name ("unknown-host" if it cannot be read).
std::string hostName();
// Renames `tmp` to `path`, throwing std::runtime_error naming both on failure.
void commitFile(const std::string& tmp, const std::string& path);
// Writes `text` to `path` atomically (single process).
void writeTextFile(const std::string& path, const std::string& text);
// Creates `dir` and its parents; throws with the path and the reason on failure.
void makeDirectories(const std::string& dir);

} // namespace caustic
