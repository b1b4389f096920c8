#pragma once
// Reading a whole input text file (parameter, campaign and training files): the one reader.
#include <string>

namespace caustic {

// The contents of `path`. Throws ParamError `<what> "<path>": cannot be opened` (an input
// error: the command reports it and exits with code 2).
std::string readTextFile(const std::string& path, const std::string& what);

} // namespace caustic
