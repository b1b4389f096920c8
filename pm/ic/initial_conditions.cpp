#include "pm/ic/initial_conditions.hpp"

#include "pm/core/profiling.hpp"

namespace caustic {

template <class T, class R>
BasicParticles<R> makeInitialConditions(std::shared_ptr<const SlabDecomposition> lattice,
                                        const Cosmology& cosmo, const LinearPower& power,
                                        const ICOptions& opt) {
  ScopedRegion region("caustic::makeInitialConditions");
  Field<T> delta(lattice, "caustic::ic::delta");
  const FFT<T> fft(lattice, FFTW_ESTIMATE, &delta); // planned before delta holds anything
  fillWhiteNoise(delta, opt.noise);
  applyLinearPower(delta, power);
  const LptFields<T> lpt = lptDisplacements(delta, fft, opt.lpt_order);
  return lptParticles<T, R>(lpt, cosmo, opt.a_start, opt.lattice_offset);
}

template Particles makeInitialConditions<float>(std::shared_ptr<const SlabDecomposition>,
                                                const Cosmology&, const LinearPower&,
                                                const ICOptions&);
template Particles makeInitialConditions<double>(std::shared_ptr<const SlabDecomposition>,
                                                 const Cosmology&, const LinearPower&,
                                                 const ICOptions&);
template SingleParticles
makeInitialConditions<float, float>(std::shared_ptr<const SlabDecomposition>, const Cosmology&,
                                    const LinearPower&, const ICOptions&);

} // namespace caustic
