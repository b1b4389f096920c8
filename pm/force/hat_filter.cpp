#include "pm/force/hat_filter.hpp"
#include "pm/core/device_copy.hpp"

#include <Kokkos_ScatterView.hpp>
#include <stdexcept>
#include <string>

namespace caustic {

HatFilter::HatFilter(std::vector<double> nodes, std::vector<double> theta)
    : _nodes(std::move(nodes)), _theta(std::move(theta)) {
  if (_nodes.empty() || _theta.size() != _nodes.size())
    throw std::invalid_argument("HatFilter: " + std::to_string(_theta.size()) + " parameters for " +
                                std::to_string(_nodes.size()) +
                                " nodes (need as many, at least one)");
  for (std::size_t i = 0; i < _nodes.size(); ++i)
    if (!(_nodes[i] >= 0) || (i > 0 && !(_nodes[i] > _nodes[i - 1])))
      throw std::invalid_argument("HatFilter: the nodes must be >= 0 and increasing");
  _dnodes = toDeviceView(_nodes, "caustic::HatFilter::nodes");
  _dtheta = toDeviceView(_theta, "caustic::HatFilter::theta");
}

void HatFilter::apply(Field<double>& phi_k, double) const {
  const double kf = phi_k.decomp().kFundamental();
  auto nodes = _dnodes, theta = _dtheta;
  auto c = phi_k.complex();
  phi_k.decomp().forEachMode(
      "caustic::HatFilter::apply", KOKKOS_LAMBDA(const MeshMode& m) {
        int idx[2];
        double w[2];
        const int nh = clampedHats(nodes.data(), static_cast<int>(nodes.extent(0)),
                                  kf * km::sqrt(double(m.m2())), idx, w);
        double k = 1.0;
        for (int j = 0; j < nh; ++j)
          k += theta(idx[j]) * w[j];
        c(m.index) *= k;
      });
}

void HatFilter::vjpParameters(const Field<double>& phibar_k, const Field<double>& phi_k, double,
                              std::vector<double>& grad) const {
  if (grad.size() != _nodes.size())
    throw std::invalid_argument("HatFilter::vjpParameters: " + std::to_string(grad.size()) +
                                " gradient entries for " + std::to_string(_nodes.size()) +
                                " parameters");
  Kokkos::View<double*> acc("caustic::HatFilter::gradient", _nodes.size());
  auto sacc = Kokkos::Experimental::create_scatter_view(acc);
  const double kf = phibar_k.decomp().kFundamental();
  auto nodes = _dnodes;
  auto a = phibar_k.complex(), b = phi_k.complex();
  phibar_k.decomp().forEachMode(
      "caustic::HatFilter::gradient", KOKKOS_LAMBDA(const MeshMode& m) {
        auto s = sacc.access();
        int idx[2];
        double w[2];
        const int nh = clampedHats(nodes.data(), static_cast<int>(nodes.extent(0)),
                                  kf * km::sqrt(double(m.m2())), idx, w);
        const std::size_t i = m.index;
        const double v = m.weight * (a(i).real() * b(i).real() + a(i).imag() * b(i).imag());
        for (int j = 0; j < nh; ++j)
          s(idx[j]) += v * w[j];
      });
  Kokkos::Experimental::contribute(acc, sacc);
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), acc);
  for (std::size_t j = 0; j < grad.size(); ++j)
    grad[j] += h(j);
}

} // namespace caustic
