#pragma once
// Baryonification of a particle set: every halo's BCM displacement (bcm.hpp) applied to the
// particles around it, and the baryonic components the particles stand for afterwards.
//
// Distribution: the halo list is the same on every rank (a FoF catalogue is); each rank builds the
// profiles of the haloes whose displacement sphere (r_max) reaches its particles' x-range, so
// haloes near a slab edge act on both sides (the halo-level analogue of ghost particles). The
// displacement of a particle is the sum over those haloes in catalogue order, from its position
// before any displacement, in a Kokkos kernel over particles; the haloes are found through a cell
// list built identically on every rank, so the result does not depend on the number of ranks or
// on which rank holds a particle (bit for bit).
//
// Components at the displaced positions (`components`): for a particle at distances r_h from the
// haloes that reach it, with rho_h the BCM density of halo h (without the background) and rho_m
// the mean matter density,
//   gas fraction   f_gas = [sum_h rho_gas,h(r_h) + f_d rho_m] / [sum_h rho_h(r_h) + rho_m]
//   star fraction  f_star = sum_h [rho_cga,h + (f_sga / f_clm) rho_clm,h](r_h) / [...]: the
//                  central galaxy and the satellites (f_sga = f_star - f_cga), which move with the
//                  relaxed collisionless matter
//   thermal pressure P = sum_h P_h(r_h) (hydrostatic, bcm.hpp) + the pressure of the diffuse gas
//                  at T_igm (default 1e4 K).
// The diffuse gas fraction f_d (about f_b = Omega_b / Omega_m) is set so that gas and stars add up
// to f_b of all particles' mass: the local densities of the model are not the particles' own, so
// the ratios alone would not conserve the baryons (they miss about 5% in a 64 Mpc/h box).
// The particle's gas then has the mass f_gas m_p and the specific thermal energy P / rho_gas with
// rho_gas the same sums' gas density; its temperature is T = mu m_p P / (k_B rho_gas).
#include "pm/baryons/bcm.hpp"
#include "pm/particles/particles.hpp"

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace caustic {

struct BcmHalo {
  double pos[3] = {0, 0, 0}; // [Mpc/h] in [0, L)
  double m200c = 0.0;        // [Msun/h]
  double c200c = 0.0;
};

struct BaryonifyStats {
  std::size_t haloes = 0;       // haloes given
  std::size_t local_haloes = 0; // haloes whose profiles this rank built
  std::size_t displaced = 0;    // particles of this rank moved by at least one halo
  double max_displacement = 0.0; // [Mpc/h] on this rank
  double rms_displacement = 0.0; // [Mpc/h] over this rank's particles
};

// Per-particle baryonic components at the particles' (displaced) positions: gas mass fraction,
// star fraction (central galaxy and satellites) and thermal gas pressure [(Msun/h) (km/s)^2 /
// (Mpc/h)^3 physical], and the gas density the fractions were taken from [(Msun/h)/(Mpc/h)^3
// comoving].
struct BaryonComponents {
  std::vector<double> gas_fraction, star_fraction, pressure, gas_density;
  double diffuse_gas_fraction = 0.0; // f_d
};

// The model of one rank: the profiles of the haloes whose r_max reaches the x-range [x_lo, x_hi]
// (periodic), tabulated once (float tables of 260 points in ln r: displacement, BCM, gas and star
// densities, pressure; about 5 kB per halo) and a cell list over them. Every rank passes the same
// halo list. Throws std::invalid_argument for invalid parameters or haloes (naming the halo).
class BaryonModel {
public:
  BaryonModel(const std::vector<BcmHalo>& haloes, const BcmParameters& p, const BcmBackground& bg,
              double box, double x_lo, double x_hi);
  ~BaryonModel();
  BaryonModel(BaryonModel&&) noexcept;
  BaryonModel& operator=(BaryonModel&&) noexcept;

  std::size_t haloes() const;      // haloes given
  std::size_t localHaloes() const; // haloes this rank tabulated

  // Moves the particles (positions wrapped into [0, L)); each rank alone. Particles must lie in
  // [x_lo, x_hi] (std::invalid_argument otherwise).
  BaryonifyStats displace(Particles& parts) const;
  // The components at the particles' positions (which must lie in [x_lo, x_hi]). Collective over
  // `comm` (the baryon budget). Throws std::runtime_error if the haloes alone hold more than f_b
  // of the matter.
  BaryonComponents components(const Particles& parts, MPI_Comm comm, double t_igm = 1e4) const;

private:
  struct Impl;
  std::unique_ptr<Impl> _impl;
};

// Conveniences over the x-range of `parts`.
BaryonifyStats baryonify(Particles& parts, const std::vector<BcmHalo>& haloes,
                         const BcmParameters& p, const BcmBackground& bg, double box);
BaryonComponents baryonComponents(const Particles& parts, const std::vector<BcmHalo>& haloes,
                                  const BcmParameters& p, const BcmBackground& bg, double box,
                                  MPI_Comm comm, double t_igm = 1e4);

// Constants of the gas: primordial hydrogen mass fraction X = 0.76, fully ionised.
constexpr double kHydrogenFraction = 0.76;
// Mean molecular weight mu = 4 / (3 + 5 X) and electron weight mu_e = 2 / (1 + X).
constexpr double kMeanMolecularWeight = 4.0 / (3.0 + 5.0 * kHydrogenFraction);
constexpr double kElectronWeight = 2.0 / (1.0 + kHydrogenFraction);
// T = mu m_p P / (k_B rho) for P / rho in (km/s)^2: mu m_p (1e5 cm/s)^2 / k_B [K].
double temperatureOfSpecificPressure(double p_over_rho);

} // namespace caustic
