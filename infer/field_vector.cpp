#include "infer/field_vector.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace caustic {

FieldVector::FieldVector(std::shared_ptr<const SlabDecomposition> lattice, std::size_t nparams)
    : _lattice(std::move(lattice)),
      _noise(std::make_unique<Field<double>>(_lattice, "caustic::FieldVector::noise")),
      _params(nparams, 0.0) {}

FieldVector::FieldVector(const FieldVector& o)
    : ROL::Vector<double>(), _lattice(o._lattice),
      _noise(std::make_unique<Field<double>>(_lattice, "caustic::FieldVector::noise")),
      _params(o._params) {
  Kokkos::deep_copy(_noise->real(), o._noise->real());
}

const FieldVector& FieldVector::cast(const ROL::Vector<double>& x) {
  const auto* v = dynamic_cast<const FieldVector*>(&x);
  if (!v)
    throw std::logic_error("FieldVector: the other vector is not a FieldVector");
  return *v;
}

void FieldVector::plus(const ROL::Vector<double>& x) { axpy(1.0, x); }

void FieldVector::axpy(double alpha, const ROL::Vector<double>& x) {
  const FieldVector& o = cast(x);
  if (o._params.size() != _params.size())
    throw std::logic_error("FieldVector: " + std::to_string(o._params.size()) + " parameters, not " +
                           std::to_string(_params.size()));
  auto y = _noise->real(), v = o._noise->real();
  Kokkos::parallel_for(
      "caustic::FieldVector::axpy", Kokkos::RangePolicy<>(0, y.extent(0)),
      KOKKOS_LAMBDA(std::size_t i) { y(i) += alpha * v(i); });
  Kokkos::fence();
  for (std::size_t i = 0; i < _params.size(); ++i)
    _params[i] += alpha * o._params[i];
}

void FieldVector::scale(double alpha) {
  auto y = _noise->real();
  Kokkos::parallel_for(
      "caustic::FieldVector::scale", Kokkos::RangePolicy<>(0, y.extent(0)),
      KOKKOS_LAMBDA(std::size_t i) { y(i) *= alpha; });
  Kokkos::fence();
  for (double& p : _params)
    p *= alpha;
}

double latticeDot(const Field<double>& a, const Field<double>& b) {
  auto x = a.real(), y = b.real();
  double s = 0.0;
  a.decomp().reducePoints(
      "caustic::latticeDot",
      KOKKOS_LAMBDA(const MeshPoint& q, double& acc) { acc += x(q.index) * y(q.index); }, s);
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &s, 1, MPI_DOUBLE, MPI_SUM, a.decomp().comm().get()),
           "latticeDot");
  return s;
}

double FieldVector::dot(const ROL::Vector<double>& x) const {
  const FieldVector& o = cast(x);
  double s = latticeDot(*_noise, *o._noise);
  for (std::size_t i = 0; i < _params.size(); ++i)
    s += _params[i] * o._params[i];
  return s;
}

double FieldVector::norm() const { return std::sqrt(dot(*this)); }

ROL::Ptr<ROL::Vector<double>> FieldVector::clone() const {
  return ROL::makePtr<FieldVector>(_lattice, _params.size());
}

void FieldVector::zero() {
  _noise->setZero();
  for (double& p : _params)
    p = 0.0;
}

void FieldVector::set(const ROL::Vector<double>& x) {
  const FieldVector& o = cast(x);
  Kokkos::deep_copy(_noise->real(), o._noise->real());
  _params = o._params;
}

int FieldVector::dimension() const {
  const double n = _lattice->n();
  return static_cast<int>(n * n * n) + static_cast<int>(_params.size());
}

} // namespace caustic
