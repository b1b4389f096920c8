#pragma once
// Numbers as text, in messages, logs and the files written: the one formatter.
#include <string>
#include <vector>

namespace caustic {

// printf-style into a string of any length: format("%.4f", 0.5) = "0.5000".
std::string format(const char* spec, ...) __attribute__((format(printf, 1, 2)));

// A number with at most `digits` significant digits, as printf's %g: 0.3, 1e-05, 2.5e+10
// (values in messages and in the campaign's member files).
std::string formatNumber(double v, int digits = 10);
// The FNV-1a 64-bit hash of `text` as 16 hex digits (parameter and configuration hashes).
std::string fnv1aHex(const std::string& text);
// The items separated by `sep`: joined({"a", "b"}, "; ") = "a; b".
std::string joined(const std::vector<std::string>& items, const std::string& sep);

} // namespace caustic
