#pragma once
// A 3D U-Net for periodic fields (native LibTorch module).
//
// Level l (0 = full resolution) has width * 2^l channels; every level has two 3x3x3 convolutions
// with circular (periodic) padding and ReLU. Going down: 2x2x2 average pooling; going up: a
// 2x2x2 stride-2 transposed convolution, concatenated with the skip connection of that level.
// A final 1x1x1 convolution maps to the output channels. The network is translation-equivariant
// for shifts that are multiples of stride() = 2^depth, so fields and tiles must be aligned to
// it (applyDistributed does this), and each side must be a multiple of stride().
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace caustic {

struct UNetConfig {
  int in_channels = 1;
  int out_channels = 1;
  int depth = 2; // number of poolings
  int width = 8; // channels at full resolution

  int stride() const { return 1 << depth; }
  // An upper bound of the receptive-field radius [cells] of an output cell: two convolutions per
  // level and both directions, plus the block extent of each pooling and upsampling:
  // 2^(depth+1) + 6 (2^depth - 1).
  int receptiveField() const { return 2 * stride() + 6 * (stride() - 1); }
  nlohmann::json toJson() const;
  // Reads {"type": "unet3d", ...}; throws std::invalid_argument naming `where` otherwise.
  static UNetConfig fromJson(const nlohmann::json& j, const std::string& where);
};

class UNet3dImpl : public torch::nn::Module {
public:
  explicit UNet3dImpl(const UNetConfig& cfg);
  // x: (batch, in_channels, nx, ny, nz), each side a multiple of stride().
  torch::Tensor forward(torch::Tensor x);
  const UNetConfig& config() const { return _cfg; }

private:
  UNetConfig _cfg;
  std::vector<torch::nn::Sequential> _down; // per level 0..depth (depth: bottom)
  std::vector<torch::nn::ConvTranspose3d> _upsample;
  std::vector<torch::nn::Sequential> _up; // per level 0..depth-1
  torch::nn::Conv3d _head{nullptr};
};
TORCH_MODULE(UNet3d);

} // namespace caustic
