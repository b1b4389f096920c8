#pragma once
// An emulator model: a TorchScript module or a native LibTorch module (a U-Net saved by
// `caustic train`) plus its metadata record, behind one interface.
//
// forward() takes fields in physical units, shape (batch, C_in, nx, ny, nz), transforms and
// normalises each input channel c as (t_c(x) - mean_c) / std_c, appends one constant channel per
// conditioning value, runs the module, and maps each output channel back as
// t_c^-1(y std_c + mean_c [+ t_r(x_r) for a residual of input r]) (metadata.hpp).
#include "emulators/runtime/metadata.hpp"
#include "emulators/runtime/unet.hpp"

#include <torch/script.h>

#include <functional>
#include <memory>
#include <string>

namespace caustic {

class Model {
public:
  // Loads the model file `path` and its metadata, by default `path` with its extension replaced
  // by ".json". A record with an "architecture" names a native module (weights saved with
  // torch::save); otherwise the file is TorchScript. Throws std::runtime_error naming the file
  // on failure, and naming the record, the setting and the saved shape when the architecture
  // disagrees with the weights (torch::load alone would take the saved shapes silently).
  static Model load(const std::string& path, const std::string& metadata_path = "");
  // Wraps an in-memory TorchScript module (tests, models built in C++).
  Model(torch::jit::Module module, ModelMetadata meta);
  // Wraps a native U-Net (training, tests); the metadata's architecture and stride are set
  // from its configuration.
  Model(UNet3d net, ModelMetadata meta);

  const ModelMetadata& metadata() const { return _meta; }
  // Whether the module pads periodically itself (the native U-Net): applied to a field whole
  // along an axis, it needs no padding there.
  bool periodicPadding() const { return _periodic; }
  // The values of the metadata's conditioning scalars, in its order (physical units); forward()
  // of a conditioned model throws until they are set.
  void setConditioning(const std::vector<double>& values);
  torch::Tensor forward(const torch::Tensor& x) const;
  // The same with autograd recording (for vector-Jacobian products with respect to x).
  torch::Tensor forwardWithGrad(const torch::Tensor& x) const;

private:
  std::function<torch::Tensor(const torch::Tensor&)> _run; // normalised in, normalised out
  std::shared_ptr<void> _holder;                           // keeps the module alive
  ModelMetadata _meta;
  std::vector<double> _conditioning; // normalised
  bool _periodic = false;
};

// The channel transform of metadata.hpp and its inverse, elementwise (any shape).
torch::Tensor transformChannel(const Channel& c, const torch::Tensor& x);
torch::Tensor untransformChannel(const Channel& c, const torch::Tensor& t);

} // namespace caustic
