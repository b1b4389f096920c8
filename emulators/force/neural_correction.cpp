#include "emulators/force/neural_correction.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace caustic {

nlohmann::json NeuralSplineConfig::toJson() const {
  return {{"type", "neural_spline"},
          {"knots", knots},
          {"latent", latent},
          {"bound", bound},
          {"flat_origin", flat_origin}};
}

NeuralSplineConfig NeuralSplineConfig::fromJson(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object() || j.value("type", "") != "neural_spline")
    throw std::invalid_argument(where + ": architecture is not {\"type\": \"neural_spline\", ...}");
  NeuralSplineConfig c;
  c.knots = j.value("knots", c.knots);
  c.latent = j.value("latent", c.latent);
  c.bound = j.value("bound", c.bound);
  if (j.contains("flat_origin") && !j["flat_origin"].is_boolean())
    throw std::invalid_argument(where + ": flat_origin = " + j["flat_origin"].dump() +
                                " (allowed: true or false)");
  c.flat_origin = j.value("flat_origin", c.flat_origin);
  if (c.knots < 1 || c.knots > 64)
    throw std::invalid_argument(where + ": knots = " + std::to_string(c.knots) +
                                " (allowed: 1..64)");
  if (c.latent < 1 || c.latent > 1024)
    throw std::invalid_argument(where + ": latent = " + std::to_string(c.latent) +
                                " (allowed: 1..1024)");
  if (!(c.bound > 0 && c.bound <= 10))
    throw std::invalid_argument(where + ": bound = " + std::to_string(c.bound) +
                                " (allowed: (0, 10])");
  return c;
}

NeuralSplineNetImpl::NeuralSplineNetImpl(const NeuralSplineConfig& cfg) : _cfg(cfg) {
  const auto opts = [](int i, int o) { return torch::nn::LinearOptions(i, o); };
  _l1 = register_module("l1", torch::nn::Linear(opts(1, cfg.latent)));
  _l2 = register_module("l2", torch::nn::Linear(opts(cfg.latent, cfg.latent)));
  _knots = register_module("knots", torch::nn::Linear(opts(cfg.latent, cfg.knots)));
  _weights = register_module("weights", torch::nn::Linear(opts(cfg.latent, cfg.knots + 3)));
  to(torch::kFloat64);
}

torch::Tensor bsplineCubic(const torch::Tensor& u_in, const torch::Tensor& inner,
                           const torch::Tensor& w) {
  const auto dd = torch::TensorOptions().dtype(torch::kFloat64);
  const int64_t m1 = inner.size(0); // m + 1 knots
  // Clamped knot vector: the end knots with multiplicity 4.
  const torch::Tensor t = torch::cat({inner.slice(0, 0, 1).expand({3}), inner,
                                      inner.slice(0, m1 - 1, m1).expand({3})});
  // u = 1 belongs to the last interval.
  const torch::Tensor u = torch::clamp(u_in, 0.0, 1.0 - 1e-12).unsqueeze(1);
  const int64_t nt = t.size(0);
  const torch::Tensor lo = t.slice(0, 0, nt - 1).unsqueeze(0).detach(),
                      hi = t.slice(0, 1, nt).unsqueeze(0).detach();
  torch::Tensor B = ((u >= lo) & (u < hi)).to(dd); // degree 0
  auto ratio = [&](const torch::Tensor& num, const torch::Tensor& den) {
    const torch::Tensor ok = den > 0;
    return torch::where(ok, num / torch::where(ok, den, torch::ones_like(den)),
                        torch::zeros_like(num));
  };
  for (int p = 1; p <= 3; ++p) {
    const int64_t nb = B.size(1) - 1;
    const torch::Tensor ti = t.slice(0, 0, nb).unsqueeze(0), tip = t.slice(0, p, p + nb).unsqueeze(0),
                        ti1 = t.slice(0, 1, 1 + nb).unsqueeze(0),
                        tip1 = t.slice(0, p + 1, p + 1 + nb).unsqueeze(0);
    B = ratio(u - ti, tip - ti) * B.slice(1, 0, nb) + ratio(tip1 - u, tip1 - ti1) * B.slice(1, 1, nb + 1);
  }
  return torch::matmul(B, w);
}

std::vector<double> bsplineCubicHost(const std::vector<double>& u_in,
                                     const std::vector<double>& inner,
                                     const std::vector<double>& w) {
  // The clamped knot vector and the Cox-de Boor recursion of bsplineCubic, point by point.
  std::vector<double> t(3, inner.front());
  t.insert(t.end(), inner.begin(), inner.end());
  t.insert(t.end(), 3, inner.back());
  const std::size_t nt = t.size();
  auto ratio = [](double num, double den) { return den > 0 ? num / den : 0.0; };
  std::vector<double> out(u_in.size()), B(nt - 1), next(nt - 1);
  for (std::size_t q = 0; q < u_in.size(); ++q) {
    const double u = std::min(std::max(u_in[q], 0.0), 1.0 - 1e-12);
    for (std::size_t i = 0; i + 1 < nt; ++i)
      B[i] = (u >= t[i] && u < t[i + 1]) ? 1.0 : 0.0;
    std::size_t nb = nt - 1;
    for (std::size_t p = 1; p <= 3; ++p) {
      --nb;
      for (std::size_t i = 0; i < nb; ++i)
        next[i] = ratio(u - t[i], t[i + p] - t[i]) * B[i] +
                  ratio(t[i + p + 1] - u, t[i + p + 1] - t[i + 1]) * B[i + 1];
      std::swap(B, next);
    }
    double s = 0.0;
    for (std::size_t i = 0; i < nb; ++i)
      s += B[i] * w[i];
    out[q] = s;
  }
  return out;
}

std::pair<torch::Tensor, torch::Tensor> NeuralSplineNetImpl::spline(double a) {
  const auto dd = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor h = torch::tanh(_l1->forward(torch::full({1, 1}, a, dd)));
  h = torch::tanh(_l2->forward(h));
  const torch::Tensor frac = torch::softmax(_knots->forward(h).squeeze(0), 0);
  const int m = _cfg.knots;
  // m + 1 knots from 0 to exactly 1.
  const torch::Tensor inner = torch::cat(
      {torch::zeros({1}, dd), torch::cumsum(frac, 0).slice(0, 0, m - 1), torch::ones({1}, dd)});
  const torch::Tensor w = _weights->forward(h).squeeze(0);
  if (!_cfg.flat_origin)
    return {inner, w};
  // s'(0) = 3 (w_1 - w_0) / inner[1] on the clamped knot vector: zero with w_1 = w_0.
  return {inner, torch::cat({w.slice(0, 0, 1), w.slice(0, 0, 1), w.slice(0, 2)})};
}

torch::Tensor NeuralSplineNetImpl::forward(const torch::Tensor& x, double a) {
  const auto dd = torch::TensorOptions().dtype(torch::kFloat64);
  const auto [inner, w] = spline(a);
  const torch::Tensor u = x / std::sqrt(3.0);
  const torch::Tensor s = bsplineCubic(u, inner, w) - bsplineCubic(torch::zeros({1}, dd), inner, w);
  return _cfg.bound * torch::tanh(s / _cfg.bound);
}


template <class T>
std::size_t NeuralSplineCorrection<T>::parameterCount(const NeuralSplineConfig& c) {
  const std::size_t L = c.latent, m = c.knots;
  return (1 * L + L) + (L * L + L) + (L * m + m) + (L * (m + 3) + m + 3);
}

template <class T>
NeuralSplineCorrection<T>::NeuralSplineCorrection(const NeuralSplineConfig& cfg,
                                                  const std::vector<double>& theta,
                                                  unsigned long seed)
    : _cfg(cfg) {
  torch::NoGradGuard no_grad;
  if (theta.empty()) {
    torch::manual_seed(seed);
    _net = NeuralSplineNet(cfg);
    for (auto& p : _net->named_parameters())
      if (p.key().rfind("weights.", 0) == 0)
        p.value().zero_(); // the identity correction to start from
    return;
  }
  _net = NeuralSplineNet(cfg);
  const std::size_t want = parameterCount(cfg);
  if (theta.size() != want)
    throw std::invalid_argument("neural_spline correction: " + std::to_string(theta.size()) +
                                " parameters for a network with " + std::to_string(want));
  std::size_t o = 0;
  for (auto& p : _net->parameters()) {
    auto flat = p.view({-1});
    auto src = torch::from_blob(const_cast<double*>(theta.data() + o), {flat.size(0)},
                                torch::kFloat64);
    flat.copy_(src);
    o += static_cast<std::size_t>(flat.size(0));
  }
}

template <class T> std::vector<double> NeuralSplineCorrection<T>::parameters() const {
  std::vector<double> out;
  for (const auto& p : _net->parameters()) {
    auto c = p.detach().contiguous().view({-1});
    out.insert(out.end(), c.data_ptr<double>(), c.data_ptr<double>() + c.size(0));
  }
  return out;
}

template <class T>
void NeuralSplineCorrection<T>::table(double a, int n, double, std::vector<double>& K) const {
  // The network gives the spline's knots and weights (a few small tensor operations); the
  // spline itself is evaluated on the host (the same arithmetic as forward(), which autograd
  // differentiates in tableVJP).
  torch::NoGradGuard no_grad;
  const auto [inner_t, w_t] = _net->spline(a);
  const auto toVector = [](const torch::Tensor& t) {
    const auto c = t.contiguous();
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  };
  const std::vector<double> inner = toVector(inner_t), w = toVector(w_t);
  auto u = radialTableX(n);
  if (u.size() != K.size())
    throw std::logic_error("NeuralSplineCorrection::table: table size mismatch");
  for (double& v : u)
    v /= std::sqrt(3.0);
  const std::vector<double> s = bsplineCubicHost(u, inner, w);
  const double s0 = bsplineCubicHost({0.0}, inner, w)[0], B = _cfg.bound;
  for (std::size_t j = 0; j < K.size(); ++j)
    K[j] = std::exp(B * std::tanh((s[j] - s0) / B));
}

template <class T>
void NeuralSplineCorrection<T>::tableVJP(double a, int n, double, const std::vector<double>& gK,
                                         std::vector<double>& grad) const {
  const std::size_t np = parameterCount(_cfg);
  if (grad.size() != np)
    throw std::invalid_argument("NeuralSplineCorrection::tableVJP: " +
                                std::to_string(grad.size()) + " gradient entries for " +
                                std::to_string(np) + " parameters");
  torch::AutoGradMode enable(true);
  const auto x = radialTableX(n);
  const torch::Tensor xt =
      torch::from_blob(const_cast<double*>(x.data()), {static_cast<int64_t>(x.size())},
                       torch::kFloat64);
  const torch::Tensor g = torch::from_blob(const_cast<double*>(gK.data()),
                                           {static_cast<int64_t>(gK.size())}, torch::kFloat64);
  const torch::Tensor k = torch::exp(_net->forward(xt, a));
  const auto params = _net->parameters();
  const auto grads = torch::autograd::grad({k}, params, {g}, /*retain_graph=*/false,
                                           /*create_graph=*/false, /*allow_unused=*/true);
  std::size_t o = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const int64_t cnt = params[i].numel();
    if (grads[i].defined()) {
      auto c = grads[i].contiguous().view({-1});
      for (int64_t j = 0; j < cnt; ++j)
        grad[o + static_cast<std::size_t>(j)] += c.data_ptr<double>()[j];
    }
    o += static_cast<std::size_t>(cnt);
  }
}

template class NeuralSplineCorrection<float>;
template class NeuralSplineCorrection<double>;

} // namespace caustic
