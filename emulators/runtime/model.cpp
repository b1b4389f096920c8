#include "emulators/runtime/model.hpp"

#include <filesystem>

namespace caustic {

namespace {
torch::Tensor channelVector(const std::vector<Channel>& ch, bool mean, int64_t ndim) {
  std::vector<double> v;
  for (const auto& c : ch)
    v.push_back(mean ? c.mean : c.std);
  std::vector<int64_t> shape(ndim, 1);
  shape[1] = static_cast<int64_t>(v.size());
  return torch::tensor(v, torch::kFloat64).view(shape);
}
} // namespace

Model::Model(torch::jit::Module module, ModelMetadata meta) : _meta(std::move(meta)) {
  auto m = std::make_shared<torch::jit::Module>(std::move(module));
  m->eval();
  _holder = m;
  _run = [m](const torch::Tensor& x) { return m->forward({x}).toTensor(); };
}

Model::Model(UNet3d net, ModelMetadata meta) : _meta(std::move(meta)) {
  net->eval();
  _meta.architecture = net->config().toJson();
  _meta.stride = net->config().stride();
  _holder = net.ptr();
  _run = [net](const torch::Tensor& x) mutable { return net->forward(x.to(torch::kFloat32)); };
}

Model Model::load(const std::string& path, const std::string& metadata_path) {
  std::string meta = metadata_path;
  if (meta.empty())
    meta = std::filesystem::path(path).replace_extension(".json").string();
  ModelMetadata md = ModelMetadata::fromFile(meta);
  if (!md.architecture.is_null()) {
    const UNetConfig cfg = UNetConfig::fromJson(md.architecture, "model metadata " + meta);
    if (cfg.in_channels != static_cast<int>(md.inputs.size()) ||
        cfg.out_channels != static_cast<int>(md.outputs.size()))
      throw std::runtime_error("model metadata " + meta +
                               ": the architecture's channel counts differ from inputs/outputs");
    UNet3d net(cfg);
    try {
      torch::load(net, path);
    } catch (const c10::Error& e) {
      throw std::runtime_error("model " + path + ": cannot load the weights of a " +
                               md.architecture.dump() + ": " + e.what_without_backtrace());
    }
    return Model(net, std::move(md));
  }
  try {
    return Model(torch::jit::load(path), std::move(md));
  } catch (const c10::Error& e) {
    throw std::runtime_error("model " + path +
                             ": cannot be loaded as TorchScript: " + e.what_without_backtrace());
  }
}

torch::Tensor Model::forward(const torch::Tensor& x) const {
  if (x.dim() < 2 || x.size(1) != static_cast<int64_t>(_meta.inputs.size()))
    throw std::runtime_error(
        "Model::forward: input has shape " + std::to_string(x.dim() < 2 ? -1 : x.size(1)) +
        " channels; the model (" + _meta.kind + ") takes " + std::to_string(_meta.inputs.size()));
  torch::NoGradGuard no_grad;
  const auto dtype = x.scalar_type();
  const auto xn = ((x.to(torch::kFloat64) - channelVector(_meta.inputs, true, x.dim())) /
                   channelVector(_meta.inputs, false, x.dim()))
                      .to(dtype);
  torch::Tensor y = _run(xn);
  if (y.dim() < 2 || y.size(1) != static_cast<int64_t>(_meta.outputs.size()))
    throw std::runtime_error(
        "Model::forward: the module returned " + std::to_string(y.dim() < 2 ? -1 : y.size(1)) +
        " channels; the metadata declares " + std::to_string(_meta.outputs.size()));
  return (y.to(torch::kFloat64) * channelVector(_meta.outputs, false, y.dim()) +
          channelVector(_meta.outputs, true, y.dim()))
      .to(y.scalar_type());
}

} // namespace caustic
