#pragma once
// An emulator model: a TorchScript module plus its metadata record, behind one interface.
//
// forward() takes fields in physical units, shape (batch, C_in, nx, ny, nz), normalises each
// input channel c as (x - mean_c) / std_c, runs the module, and maps each output channel back
// as y std_c + mean_c (means and stds from the metadata).
#include "emulators/metadata.hpp"

#include <torch/script.h>

#include <memory>
#include <string>

namespace caustic {

class Model {
public:
  // Loads the TorchScript file `path` and its metadata, by default `path` with its extension
  // replaced by ".json". Throws std::runtime_error naming the file on failure.
  static Model load(const std::string& path, const std::string& metadata_path = "");
  // Wraps an in-memory module (tests, models just trained).
  Model(torch::jit::Module module, ModelMetadata meta);

  const ModelMetadata& metadata() const { return _meta; }
  torch::Tensor forward(const torch::Tensor& x) const;

private:
  std::shared_ptr<torch::jit::Module> _module;
  ModelMetadata _meta;
};

} // namespace caustic
