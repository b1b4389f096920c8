#include "pm/mesh/workspace.hpp"

namespace caustic {

namespace {
template <class T>
std::vector<std::unique_ptr<Field<T>>>
initialBuffers(const std::shared_ptr<const Decomposition>& decomp, int initial) {
  std::vector<std::unique_ptr<Field<T>>> f;
  for (int i = 0; i < initial; ++i)
    f.push_back(std::make_unique<Field<T>>(decomp, "caustic::Workspace::mesh"));
  return f;
}
} // namespace

template <class T>
Workspace<T>::Workspace(std::shared_ptr<const Decomposition> decomp, unsigned fft_flags,
                        int initial)
    : _decomp(decomp), _fields(initialBuffers<T>(decomp, initial)), _busy(_fields.size(), false),
      // No scratch mesh to plan on: the first buffer is free until its first lease.
      _fft(decomp, fft_flags, _fields.empty() ? nullptr : _fields.front().get()) {}

template <class T> typename Workspace<T>::Lease Workspace<T>::lease(const std::string& who) {
  // A free slot (allocated again if it was released); released slots keep their index, so
  // that the leases held meanwhile stay valid.
  for (std::size_t i = 0; i < _fields.size(); ++i)
    if (!_busy[i]) {
      if (!_fields[i])
        _fields[i] = std::make_unique<Field<T>>(_decomp, "caustic::Workspace::" + who);
      _busy[i] = true;
      return Lease(this, i);
    }
  _fields.push_back(std::make_unique<Field<T>>(_decomp, "caustic::Workspace::" + who));
  _busy.push_back(true);
  return Lease(this, _fields.size() - 1);
}

template <class T> std::size_t Workspace<T>::buffers() const {
  std::size_t n = 0;
  for (const auto& f : _fields)
    n += f ? 1 : 0;
  return n;
}

template <class T> std::size_t Workspace<T>::releaseIdle() {
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < _fields.size(); ++i)
    if (!_busy[i] && _fields[i]) {
      bytes += _fields[i]->real().span() * sizeof(T);
      _fields[i].reset();
    }
  return bytes;
}

template class Workspace<float>;
template class Workspace<double>;

} // namespace caustic
