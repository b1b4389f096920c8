#pragma once
// The optimisation variable of field-level inference as a ROL vector: the white noise on the
// particle lattice (each rank holds its slab) and a few scaled parameters (held identically by
// every rank). Dot products reduce over the lattice's communicator, so ROL's algorithms run
// unchanged on any number of ranks.
#include "pm/mesh/mesh.hpp"

#include <ROL_Vector.hpp>

#include <memory>
#include <vector>

namespace caustic {

// sum_q a(q) b(q) over the real points of two fields of one decomposition (the r2c layout pads
// each row). Collective.
double latticeDot(const Field<double>& a, const Field<double>& b);

class FieldVector : public ROL::Vector<double> {
public:
  // Zero noise on `lattice` and `nparams` zero parameters.
  FieldVector(std::shared_ptr<const SlabDecomposition> lattice, std::size_t nparams);
  // A deep copy.
  FieldVector(const FieldVector& o);
  FieldVector(FieldVector&&) = default;
  FieldVector& operator=(const FieldVector&) = delete;

  Field<double>& noise() { return *_noise; }
  const Field<double>& noise() const { return *_noise; }
  std::vector<double>& params() { return _params; }
  const std::vector<double>& params() const { return _params; }

  void plus(const ROL::Vector<double>& x) override;
  void scale(double alpha) override;
  double dot(const ROL::Vector<double>& x) const override;
  double norm() const override;
  ROL::Ptr<ROL::Vector<double>> clone() const override;
  void axpy(double alpha, const ROL::Vector<double>& x) override;
  void zero() override;
  void set(const ROL::Vector<double>& x) override;
  int dimension() const override;

private:
  static const FieldVector& cast(const ROL::Vector<double>& x);
  std::shared_ptr<const SlabDecomposition> _lattice;
  std::unique_ptr<Field<double>> _noise;
  std::vector<double> _params;
};

} // namespace caustic
