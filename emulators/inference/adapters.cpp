#include "emulators/inference/adapters.hpp"

#include "io/params.hpp"
#include "pm/core/comm.hpp"
#include "pm/core/profiling.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace caustic {

namespace {
using HostRange = Kokkos::RangePolicy<Kokkos::DefaultHostExecutionSpace>;

int axisOf(const std::string& channel) {
  const char c = channel.back();
  return c == 'x' ? 0 : c == 'y' ? 1 : 2;
}
} // namespace

const std::vector<std::string>& channelNames(FieldSpace space) {
  return hookChannels(fieldSpaceName(space));
}

FieldSpace fieldSpaceFromName(const std::string& name) {
  if (name == "eulerian")
    return FieldSpace::Eulerian;
  if (name == "lagrangian")
    return FieldSpace::Lagrangian;
  throw std::invalid_argument("field space \"" + name + "\": allowed: eulerian, lagrangian");
}

std::string fieldSpaceName(FieldSpace space) {
  return space == FieldSpace::Eulerian ? "eulerian" : "lagrangian";
}

void checkChannels(FieldSpace space, const std::vector<std::string>& channels,
                   const std::string& where) {
  const auto& allowed = channelNames(space);
  if (channels.empty())
    throw std::invalid_argument(where + ": no input channel");
  for (const auto& c : channels)
    if (std::find(allowed.begin(), allowed.end(), c) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed)
        list += (list.empty() ? "" : ", ") + a;
      throw std::invalid_argument(where + ": channel \"" + c + "\" is not a " +
                                  fieldSpaceName(space) + " channel; allowed: " + list);
    }
}

void paintGroupMembers(Field<float>& out, const HaloCatalogue& groups) {
  ScopedRegion region("caustic::paintGroupMembers");
  const auto& d = out.decomp();
  const int n = d.n(), x0 = d.xStart(), nx = d.localNx();
  const double inv_cell = n / d.box();
  const std::size_t ng = groups.size();
  Kokkos::View<double* [3]> pos("caustic::paintGroupMembers::pos", ng);
  Kokkos::View<double*> count("caustic::paintGroupMembers::count", ng);
  {
    auto hp = Kokkos::create_mirror_view(pos);
    auto hc = Kokkos::create_mirror_view(count);
    for (std::size_t g = 0; g < ng; ++g) {
      hc(g) = static_cast<double>(groups.count[g]);
      for (int c = 0; c < 3; ++c)
        hp(g, c) = groups.pos[3 * g + c];
    }
    Kokkos::deep_copy(pos, hp);
    Kokkos::deep_copy(count, hc);
  }
  out.setZero();
  const auto f = out.real();
  // Groups may share a cell: atomic additions.
  Kokkos::parallel_for(
      "caustic::paintGroupMembers", Kokkos::RangePolicy<>(0, ng),
      KOKKOS_LAMBDA(const std::size_t g) {
        int i[3];
        for (int c = 0; c < 3; ++c) {
          const long long k = static_cast<long long>(km::floor(pos(g, c) * inv_cell + 0.5)) % n;
          i[c] = static_cast<int>(k < 0 ? k + n : k);
        }
        if (i[0] >= x0 && i[0] < x0 + nx)
          Kokkos::atomic_add(&f(Field<float>::realIndex(i[0] - x0, i[1], i[2], n)),
                             static_cast<float>(count(g)));
      });
  Kokkos::fence();
}

void paintEulerian(const std::string& channel, Field<float>& out, const Painter<float>& painter,
                   const Particles& parts, double total_particles, const FofChannel* fof) {
  checkChannels(FieldSpace::Eulerian, {channel}, "paintEulerian");
  if (channel == "density") {
    paintDensityContrast(out, painter, parts, total_particles);
    return;
  }
  if (channel == "fof_count") {
    if (!fof || !(fof->mean_separation > 0.0))
      throw std::logic_error("paintEulerian: the fof_count channel needs the run's FoF settings");
    paintGroupMembers(out, findHalos(parts, painter.decomp(), fof->mean_separation, fof->options));
    return;
  }
  // Mass n^3 / N per particle paints 1 + delta; weighting it with p paints (1 + delta) <p>.
  const double n = painter.decomp().n();
  painter.paintWeighted(out, parts.x, parts.size(), parts.p, axisOf(channel),
                        n * n * n / total_particles);
}

std::vector<double> lagrangianValues(const std::string& channel, const Particles& parts, int n_p,
                                     double box, double offset) {
  checkChannels(FieldSpace::Lagrangian, {channel}, "lagrangianValues");
  const int axis = axisOf(channel);
  const std::size_t count = parts.size();
  std::vector<double> v(count);
  if (channel.rfind("momentum", 0) == 0) {
    auto p = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.p);
    Kokkos::parallel_for("caustic::lagrangianValues::momentum", HostRange(0, count),
                         [&](std::size_t i) { v[i] = p(i, axis); });
    return v;
  }
  auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
  auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  const std::uint64_t n = static_cast<std::uint64_t>(n_p);
  const double spacing = box / n_p;
  Kokkos::parallel_for("caustic::lagrangianValues::displacement", HostRange(0, count),
                       [&](std::size_t i) {
                         const std::uint64_t ijk[3] = {id(i) / (n * n), (id(i) / n) % n, id(i) % n};
                         double d = x(i, axis) - (double(ijk[axis]) * spacing + offset);
                         d -= box * std::round(d / box); // nearest periodic image
                         v[i] = d;
                       });
  return v;
}

LagrangianExchange::LagrangianExchange(std::shared_ptr<const SlabDecomposition> lattice,
                                       const Particles& parts)
    : _lattice(std::move(lattice)), _count(parts.size()) {
  ScopedRegion region("caustic::LagrangianExchange");
  const auto& d = *_lattice;
  const std::uint64_t n = static_cast<std::uint64_t>(d.n());
  auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  // Every particle goes to the owner of its lattice plane i (its own rank included).
  Kokkos::View<int*, Kokkos::HostSpace> dest("caustic::LagrangianExchange::dest", _count);
  for (std::size_t i = 0; i < _count; ++i) {
    if (id(i) >= n * n * n)
      throw std::runtime_error("LagrangianExchange: particle ID " + std::to_string(id(i)) +
                               " is outside the " + std::to_string(n) + "^3 lattice");
    dest(i) = d.ownerOfPlane(static_cast<long>(id(i) / (n * n)));
  }
  const MPI_Comm comm = d.comm().get();
  _plan.plan(comm, dest, _count, Distributor::Local::Send);
  const std::size_t nrecv = _plan.imported();
  std::vector<std::uint64_t> rid(nrecv);
  _plan.forward({Distributor::column(id)}, {Distributor::column(rid)});
  // Every local lattice site exactly once.
  const std::size_t sites = static_cast<std::size_t>(d.localNx()) * n * n;
  std::vector<char> seen(sites, 0);
  _recvSite.resize(nrecv);
  bool ok = nrecv == sites;
  for (std::size_t s = 0; s < nrecv && ok; ++s) {
    const int i = static_cast<int>(rid[s] / (n * n)) - d.xStart();
    const int j = static_cast<int>((rid[s] / n) % n), k = static_cast<int>(rid[s] % n);
    const std::size_t flat = (static_cast<std::size_t>(i) * n + j) * n + k;
    ok = !seen[flat];
    seen[flat] = 1;
    _recvSite[s] = Field<float>::realIndex(i, j, k, static_cast<int>(n));
  }
  int bad = ok ? 0 : 1, anybad = 0;
  mpiCheck(MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, comm), "LagrangianExchange");
  if (anybad)
    throw std::runtime_error("LagrangianExchange: the particles do not cover the " +
                             std::to_string(n) + "^3 lattice once each (missing or duplicate IDs)");
}

void LagrangianExchange::toLattice(const std::vector<std::vector<double>>& values,
                                   const std::vector<Field<float>*>& fields) const {
  ScopedRegion region("caustic::LagrangianExchange::toLattice");
  const int C = static_cast<int>(values.size());
  if (C != static_cast<int>(fields.size()))
    throw std::invalid_argument("LagrangianExchange::toLattice: channel counts differ");
  for (const auto& v : values)
    if (v.size() != _count)
      throw std::invalid_argument("LagrangianExchange::toLattice: one value per particle needed");
  // All channels in one transfer: the values of a particle travel as one row.
  std::vector<std::vector<double>> received(C, std::vector<double>(_recvSite.size()));
  Distributor::Columns from, to;
  for (int c = 0; c < C; ++c) {
    from.push_back(Distributor::column(values[c]));
    to.push_back(Distributor::column(received[c]));
  }
  _plan.forward(from, to);
  for (int c = 0; c < C; ++c) {
    auto h = Kokkos::create_mirror_view(fields[c]->real());
    Kokkos::deep_copy(h, 0.0f);
    const auto& r = received[c];
    Kokkos::parallel_for("caustic::LagrangianExchange::scatter", HostRange(0, _recvSite.size()),
                         [&](std::size_t s) { h(_recvSite[s]) = float(r[s]); });
    Kokkos::deep_copy(fields[c]->real(), h);
  }
}

std::vector<std::vector<double>>
LagrangianExchange::fromLattice(const std::vector<const Field<float>*>& fields) const {
  ScopedRegion region("caustic::LagrangianExchange::fromLattice");
  const int C = static_cast<int>(fields.size());
  std::vector<std::vector<double>> sites(C, std::vector<double>(_recvSite.size()));
  for (int c = 0; c < C; ++c) {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), fields[c]->real());
    auto& v = sites[c];
    Kokkos::parallel_for("caustic::LagrangianExchange::gather", HostRange(0, _recvSite.size()),
                         [&](std::size_t s) { v[s] = h(_recvSite[s]); });
  }
  // The reverse of toLattice: every value goes back to its particle.
  std::vector<std::vector<double>> values(C, std::vector<double>(_count));
  Distributor::Columns from, to;
  for (int c = 0; c < C; ++c) {
    from.push_back(Distributor::column(sites[c]));
    to.push_back(Distributor::column(values[c]));
  }
  _plan.reverse(from, to);
  return values;
}

} // namespace caustic
