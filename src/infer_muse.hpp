#pragma once
// `caustic infer` with [inference.muse]: the fitted parameters by MUSE (infer/muse.hpp). Each
// score is a MAP of the noise at fixed parameters (the run's annealing stages, from zero noise)
// and the adjoint gradient in the parameters there; the simulations are mocks of the same
// model (infer/mock.hpp) with the seeds of [inference.muse]. The scores computed so far are
// kept in the inference checkpoint directory (muse.json, rewritten after every MAP), so that a
// stopped run resumed with --resume recomputes none of them.
#include "run_context.hpp"

#include "infer/map_optimizer.hpp"
#include "infer/muse.hpp"
#include "io/infer_params.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace caustic {

struct MuseRun {
  MuseResult result;
  int stop_signal = 0;    // a signal stopped it (the result is then incomplete)
  nlohmann::json summary; // the "muse" member of inference_summary.json
};

// `data`: the posterior's observed field, overwritten by the simulations and restored before
// the return. `map`: the stages of every MAP (none fits the parameters). Collective.
MuseRun runMuse(RunContext& ctx, const InferParams& ip, FieldPosterior& post, Field<double>& data,
                double variance, const MapSettings& map, const std::vector<double>& theta0,
                const std::string& checkpoint_dir, bool resume);

} // namespace caustic
