#include "emulators/runtime/unet.hpp"

#include <stdexcept>

namespace caustic {

namespace {
torch::nn::Sequential block(int cin, int cout) {
  auto conv = [](int i, int o) {
    return torch::nn::Conv3d(
        torch::nn::Conv3dOptions(i, o, 3).padding(1).padding_mode(torch::kCircular));
  };
  return torch::nn::Sequential(conv(cin, cout), torch::nn::ReLU(), conv(cout, cout),
                               torch::nn::ReLU());
}
} // namespace

nlohmann::json UNetConfig::toJson() const {
  return {{"type", "unet3d"},
          {"in_channels", in_channels},
          {"out_channels", out_channels},
          {"depth", depth},
          {"width", width}};
}

UNetConfig UNetConfig::fromJson(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object() || j.value("type", "") != "unet3d")
    throw std::invalid_argument(where + ": \"architecture\": expected {\"type\": \"unet3d\", ...}");
  UNetConfig c;
  auto get = [&](const char* key, int lo, int hi, int& out) {
    if (!j.contains(key) || !j[key].is_number_integer())
      throw std::invalid_argument(where + ": \"architecture\"." + key + ": expected an integer");
    const int v = j[key].get<int>();
    if (v < lo || v > hi)
      throw std::invalid_argument(where + ": \"architecture\"." + key + " = " + std::to_string(v) +
                                  ": out of range; allowed: [" + std::to_string(lo) + ", " +
                                  std::to_string(hi) + "]");
    out = v;
  };
  get("in_channels", 1, 64, c.in_channels);
  get("out_channels", 1, 64, c.out_channels);
  get("depth", 0, 6, c.depth);
  get("width", 1, 512, c.width);
  return c;
}

UNet3dImpl::UNet3dImpl(const UNetConfig& cfg) : _cfg(cfg) {
  int cin = cfg.in_channels;
  for (int l = 0; l <= cfg.depth; ++l) {
    const int w = cfg.width << l;
    _down.push_back(register_module("down" + std::to_string(l), block(cin, w)));
    cin = w;
  }
  for (int l = cfg.depth - 1; l >= 0; --l) {
    const int w = cfg.width << l;
    _upsample.push_back(register_module(
        "upsample" + std::to_string(l),
        torch::nn::ConvTranspose3d(torch::nn::ConvTranspose3dOptions(2 * w, w, 2).stride(2))));
    _up.push_back(register_module("up" + std::to_string(l), block(2 * w, w)));
  }
  _head = register_module(
      "head", torch::nn::Conv3d(torch::nn::Conv3dOptions(cfg.width, cfg.out_channels, 1)));
}

torch::Tensor UNet3dImpl::forward(torch::Tensor x) {
  const int s = _cfg.stride();
  for (int d = 2; d < 5; ++d)
    if (x.size(d) % s != 0)
      throw std::invalid_argument("UNet3d: every side must be a multiple of " + std::to_string(s) +
                                  " (2^depth); got " + std::to_string(x.size(d)));
  std::vector<torch::Tensor> skips;
  for (int l = 0; l < _cfg.depth; ++l) {
    x = _down[l]->forward(x);
    skips.push_back(x);
    x = torch::avg_pool3d(x, 2);
  }
  x = _down[_cfg.depth]->forward(x);
  for (int i = 0; i < _cfg.depth; ++i) {
    x = _upsample[i]->forward(x);
    x = _up[i]->forward(torch::cat({x, skips[_cfg.depth - 1 - i]}, 1));
  }
  return _head->forward(x);
}

} // namespace caustic
