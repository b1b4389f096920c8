#include "pm/mesh/workspace.hpp"

namespace caustic {

template <class T>
Workspace<T>::Workspace(std::shared_ptr<const Decomposition> decomp, unsigned fft_flags,
                        int initial)
    : _decomp(decomp), _fft(decomp, fft_flags) {
  for (int i = 0; i < initial; ++i) {
    _fields.push_back(std::make_unique<Field<T>>(_decomp, "caustic::Workspace::mesh"));
    _busy.push_back(false);
  }
}

template <class T> typename Workspace<T>::Lease Workspace<T>::lease(const std::string& who) {
  for (std::size_t i = 0; i < _fields.size(); ++i)
    if (!_busy[i]) {
      _busy[i] = true;
      return Lease(this, i);
    }
  _fields.push_back(std::make_unique<Field<T>>(_decomp, "caustic::Workspace::" + who));
  _busy.push_back(true);
  return Lease(this, _fields.size() - 1);
}

template class Workspace<float>;
template class Workspace<double>;

} // namespace caustic
