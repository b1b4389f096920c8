#include "io/format.hpp"

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace caustic {

std::string format(const char* spec, ...) {
  va_list args;
  va_start(args, spec);
  va_list again;
  va_copy(again, args);
  const int len = std::vsnprintf(nullptr, 0, spec, args);
  va_end(args);
  std::string out;
  if (len > 0) {
    std::vector<char> buf(static_cast<std::size_t>(len) + 1);
    std::vsnprintf(buf.data(), buf.size(), spec, again);
    out.assign(buf.data(), static_cast<std::size_t>(len));
  }
  va_end(again);
  return out;
}

std::string formatNumber(double v, int digits) {
  return format("%.*g", digits, v);
}

std::string fnv1aHex(const std::string& text) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return format("%016llx", static_cast<unsigned long long>(h));
}

std::string joined(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i)
    out += (i ? sep : "") + items[i];
  return out;
}

} // namespace caustic
