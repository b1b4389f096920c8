#pragma once
// The neural force correction of Lanzieri, Lanusse & Starck 2023 (arXiv:2305.07531), in
// LibTorch behind the potential-correction interface: the PM potential is multiplied by
//   K(k, a) = exp(g),  g = B tanh((s(u) - s(0)) / B),  u = |k| / (sqrt(3) k_Nyquist) in [0, 1],
// where s is a cubic B-spline whose knots and weights come from a small network of a:
//   a -> Linear(1, L) -> tanh -> Linear(L, L) -> tanh -> { knots: Linear(L, m) -> softmax ->
//   cumulative sum (m + 1 increasing knots from 0 to 1, clamped with multiplicity 4 at the ends);
//   weights: Linear(L, m + 3) }.
// With flat_origin the spline's first two weights are tied (w_1 = w_0), so s'(0) = 0 and
// K - 1 = O(k^2) near k = 0, the form of the PM force's own deficit there (the cell-scale softening
// is quadratic in k); without it K - 1 is linear in k, which a fit can let leak into the large
// scales' growth.
// K(k -> 0) = 1 exactly (large scales keep linear growth); K > 0 and bounded by e^{+-B}; the
// table is checked at every application (RadialCorrection). The weight head starts at zero, so
// an untrained correction is the identity. Double precision throughout; its parameter VJP is
// autograd's through the table (RadialCorrection::tableVJP).
//
// The parameters are one flat vector (parameters()), in the order of the module's
// named_parameters(), so that the trainer's optimiser and the model file see a plain vector.
#include "pm/force/radial_correction.hpp"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <vector>

namespace caustic {

struct NeuralSplineConfig {
  int knots = 8;            // m: knot intervals of the spline
  int latent = 32;          // L: width of the hidden layers
  double bound = 3.0;       // B: |ln K| < B
  bool flat_origin = false; // w_1 = w_0: K - 1 = O(k^2) at small k (records without it: false)
  nlohmann::json toJson() const;
  // Reads {"type": "neural_spline", ...}; std::invalid_argument naming `where` otherwise.
  static NeuralSplineConfig fromJson(const nlohmann::json& j, const std::string& where);
};

class NeuralSplineNetImpl : public torch::nn::Module {
public:
  explicit NeuralSplineNetImpl(const NeuralSplineConfig& cfg);
  // ln K on the table x = |k| / k_Nyquist (1-D, double) at scale factor a.
  torch::Tensor forward(const torch::Tensor& x, double a);
  // The spline at a: its m + 1 inner knots (0 .. 1) and m + 3 weights (with flat_origin the
  // second is the first).
  std::pair<torch::Tensor, torch::Tensor> spline(double a);
  const NeuralSplineConfig& config() const { return _cfg; }

private:
  NeuralSplineConfig _cfg;
  torch::nn::Linear _l1{nullptr}, _l2{nullptr}, _knots{nullptr}, _weights{nullptr};
};
TORCH_MODULE(NeuralSplineNet);

// The cubic B-spline sum_i w_i B_i(u) on the clamped knot vector made of `inner` (m + 1 increasing
// knots from 0 to 1), for every u in [0, 1]; differentiable in the knots and weights.
torch::Tensor bsplineCubic(const torch::Tensor& u, const torch::Tensor& inner,
                           const torch::Tensor& w);
// The same spline evaluated on the host without autograd (the run's tables: no per-operation
// LibTorch overhead), at every u of `u`.
std::vector<double> bsplineCubicHost(const std::vector<double>& u, const std::vector<double>& inner,
                                     const std::vector<double>& w);

template <class T> class NeuralSplineCorrection : public RadialCorrection<T> {
public:
  // theta: the flat parameters (empty: a fresh network, initialised from `seed`). Throws
  // std::invalid_argument if theta has the wrong size.
  NeuralSplineCorrection(const NeuralSplineConfig& cfg, const std::vector<double>& theta,
                         unsigned long seed = 1);
  std::string name() const override { return "neural_spline"; }
  std::vector<double> parameters() const override;
  void table(double a, int n, double box, std::vector<double>& K) const override;
  void tableVJP(double a, int n, double box, const std::vector<double>& gK,
                std::vector<double>& grad) const override;
  // K = exp(g) with |g| < bound: the table check allows exactly that range.
  std::pair<double, double> bounds() const override {
    return {std::exp(-_cfg.bound) * (1 - 1e-9), std::exp(_cfg.bound) * (1 + 1e-9)};
  }
  // Number of parameters of a network with this configuration.
  static std::size_t parameterCount(const NeuralSplineConfig& cfg);

private:
  NeuralSplineConfig _cfg;
  mutable NeuralSplineNet _net{nullptr};
};

extern template class NeuralSplineCorrection<float>;
extern template class NeuralSplineCorrection<double>;

} // namespace caustic
