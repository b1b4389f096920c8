#include "emulators/runtime/model.hpp"

#include <filesystem>
#include <map>
#include <sstream>

namespace caustic {

namespace {
std::string shapeText(c10::IntArrayRef sizes) {
  std::ostringstream o;
  o << "[";
  for (std::size_t i = 0; i < sizes.size(); ++i)
    o << (i ? ", " : "") << sizes[i];
  o << "]";
  return o.str();
}

// The saved tensor `module_path`.`name` of a weights archive (module_path dot-separated, e.g.
// "down0.0"); undefined if absent.
torch::Tensor savedTensor(torch::serialize::InputArchive& ar, const std::string& module_path,
                          const std::string& name) {
  torch::serialize::InputArchive cur, next;
  torch::serialize::InputArchive* at = &ar;
  std::istringstream parts(module_path);
  for (std::string key; std::getline(parts, key, '.');) {
    if (!at->try_read(key, next))
      return {};
    cur = std::move(next);
    at = &cur;
  }
  torch::Tensor t;
  if (!at->try_read(name, t))
    return {};
  return t;
}

// Refuses weights that the U-Net of the record's "architecture" cannot hold. torch::load does
// not compare shapes: it replaces each parameter of the module with the saved tensor of the same
// name (InputArchive::read uses Tensor::set_, which takes the saved sizes) and ignores saved
// tensors the module does not have. A record whose width (or channel counts) disagree with the
// weights would load, run with the weights' width and be recorded with the record's; a record
// with a smaller depth would load a truncated network. The settings are read from the weights
// (down0.0.weight: [width, in_channels, 3, 3, 3]; head.weight: [out_channels, width, 1, 1, 1];
// the number of down<l> levels: depth + 1) and each one is compared with the record.
void checkArchitecture(const UNetConfig& cfg, torch::serialize::InputArchive& ar,
                       const std::string& meta, const std::string& path) {
  const std::string pre = "model metadata " + meta + ": \"architecture\".";
  auto refuse = [&](const std::string& key, int value, const std::string& found) {
    throw std::runtime_error(pre + key + " = " + std::to_string(value) +
                             " disagrees with the weights in " + path + ": " + found);
  };
  const torch::Tensor first = savedTensor(ar, "down0.0", "weight");
  if (first.defined() && first.dim() == 5) {
    const std::string found = "down0.0.weight has shape " + shapeText(first.sizes());
    if (first.size(0) != cfg.width)
      refuse("width", cfg.width, found + " (width " + std::to_string(first.size(0)) + ")");
    if (first.size(1) != cfg.in_channels)
      refuse("in_channels", cfg.in_channels,
             found + " (" + std::to_string(first.size(1)) + " input channels)");
  }
  const torch::Tensor head = savedTensor(ar, "head", "weight");
  if (head.defined() && head.dim() == 5 && head.size(0) != cfg.out_channels)
    refuse("out_channels", cfg.out_channels,
           "head.weight has shape " + shapeText(head.sizes()) + " (" +
               std::to_string(head.size(0)) + " output channels)");
  int levels = 0;
  for (torch::serialize::InputArchive sub; levels <= 64; ++levels)
    if (!ar.try_read("down" + std::to_string(levels), sub))
      break;
  if (levels > 0 && levels != cfg.depth + 1)
    refuse("depth", cfg.depth,
           "they hold the levels down0..down" + std::to_string(levels - 1) + " (depth " +
               std::to_string(levels - 1) + ")");
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
  _periodic = true;
}

Model Model::load(const std::string& path, const std::string& metadata_path) {
  std::string meta = metadata_path;
  if (meta.empty())
    meta = std::filesystem::path(path).replace_extension(".json").string();
  ModelMetadata md = ModelMetadata::fromFile(meta);
  if (!md.architecture.is_null()) {
    const UNetConfig cfg = UNetConfig::fromJson(md.architecture, "model metadata " + meta);
    if (cfg.in_channels != static_cast<int>(md.inputs.size() + md.conditioning.size()) ||
        cfg.out_channels != static_cast<int>(md.outputs.size()))
      throw std::runtime_error("model metadata " + meta +
                               ": the architecture's channel counts differ from inputs (plus "
                               "conditioning) / outputs");
    UNet3d net(cfg);
    std::map<std::string, std::vector<int64_t>> expected; // the record's shapes
    for (const auto& p : net->named_parameters())
      expected[p.key()] = p.value().sizes().vec();
    for (const auto& b : net->named_buffers())
      expected[b.key()] = b.value().sizes().vec();
    torch::serialize::InputArchive archive;
    try {
      archive.load_from(path);
    } catch (const c10::Error& e) {
      throw std::runtime_error("model " + path + ": cannot load the weights of a " +
                               md.architecture.dump() + ": " + e.what_without_backtrace());
    }
    checkArchitecture(cfg, archive, meta, path);
    try {
      net->load(archive); // what torch::load(net, path) does
    } catch (const c10::Error& e) {
      throw std::runtime_error("model " + path + ": cannot load the weights of a " +
                               md.architecture.dump() + ": " + e.what_without_backtrace());
    }
    // Any other disagreement: the loaded tensors must have the shapes the record gives.
    auto compare = [&](const std::string& name, const torch::Tensor& t) {
      const auto it = expected.find(name);
      if (it == expected.end() || t.sizes().vec() != it->second)
        throw std::runtime_error(
            "model metadata " + meta + ": \"architecture\" = " + md.architecture.dump() +
            " disagrees with the weights in " + path + ": " + name + " has shape " +
            shapeText(t.sizes()) + ", the architecture gives " +
            (it == expected.end() ? "none" : shapeText(it->second)));
    };
    for (const auto& p : net->named_parameters())
      compare(p.key(), p.value());
    for (const auto& b : net->named_buffers())
      compare(b.key(), b.value());
    return Model(net, std::move(md));
  }
  try {
    return Model(torch::jit::load(path), std::move(md));
  } catch (const c10::Error& e) {
    throw std::runtime_error("model " + path +
                             ": cannot be loaded as TorchScript: " + e.what_without_backtrace());
  }
}

torch::Tensor transformChannel(const Channel& c, const torch::Tensor& x) {
  if (c.transform == "log")
    return torch::log(torch::clamp_min(x, c.floor));
  if (c.transform == "log1p")
    return torch::log(torch::clamp_min(x + 1.0, c.floor));
  if (c.transform == "logit")
    return torch::logit(torch::clamp(x, c.floor, 1.0 - c.floor));
  return x;
}

torch::Tensor untransformChannel(const Channel& c, const torch::Tensor& t) {
  if (c.transform == "log")
    return torch::exp(t);
  if (c.transform == "log1p")
    return torch::exp(t) - 1.0;
  if (c.transform == "logit")
    return torch::sigmoid(t);
  return t;
}

void Model::setConditioning(const std::vector<double>& values) {
  if (values.size() != _meta.conditioning.size())
    throw std::runtime_error("Model::setConditioning: " + std::to_string(values.size()) +
                             " values for " + std::to_string(_meta.conditioning.size()) +
                             " conditioning scalars of the model (" + _meta.kind + ")");
  _conditioning.clear();
  for (std::size_t i = 0; i < values.size(); ++i)
    _conditioning.push_back((values[i] - _meta.conditioning[i].mean) / _meta.conditioning[i].std);
}

torch::Tensor Model::forward(const torch::Tensor& x) const {
  torch::NoGradGuard no_grad;
  return forwardWithGrad(x);
}

torch::Tensor Model::forwardWithGrad(const torch::Tensor& x) const {
  if (x.dim() < 2 || x.size(1) != static_cast<int64_t>(_meta.inputs.size()))
    throw std::runtime_error(
        "Model::forward: input has shape " + std::to_string(x.dim() < 2 ? -1 : x.size(1)) +
        " channels; the model (" + _meta.kind + ") takes " + std::to_string(_meta.inputs.size()));
  if (_conditioning.size() != _meta.conditioning.size())
    throw std::runtime_error("Model::forward: the model (" + _meta.kind + ") is conditioned on " +
                             std::to_string(_meta.conditioning.size()) +
                             " scalars whose values were not set");
  const auto dtype = x.scalar_type();
  const int cin = static_cast<int>(_meta.inputs.size());
  std::vector<torch::Tensor> tin; // transformed inputs (float64), kept for residual outputs
  for (int c = 0; c < cin; ++c)
    tin.push_back(transformChannel(_meta.inputs[c], x.select(1, c).to(torch::kFloat64)));
  std::vector<torch::Tensor> parts;
  for (int c = 0; c < cin; ++c)
    parts.push_back(((tin[c] - _meta.inputs[c].mean) / _meta.inputs[c].std).to(dtype));
  for (double v : _conditioning)
    parts.push_back(torch::full_like(parts.front(), v));
  torch::Tensor y = _run(torch::stack(parts, 1));
  if (y.dim() < 2 || y.size(1) != static_cast<int64_t>(_meta.outputs.size()))
    throw std::runtime_error(
        "Model::forward: the module returned " + std::to_string(y.dim() < 2 ? -1 : y.size(1)) +
        " channels; the metadata declares " + std::to_string(_meta.outputs.size()));
  std::vector<torch::Tensor> out;
  for (std::size_t c = 0; c < _meta.outputs.size(); ++c) {
    const Channel& o = _meta.outputs[c];
    torch::Tensor t = y.select(1, static_cast<int64_t>(c)).to(torch::kFloat64) * o.std + o.mean;
    if (!o.residual_of.empty())
      for (int i = 0; i < cin; ++i)
        if (_meta.inputs[i].name == o.residual_of)
          t = t + tin[i];
    out.push_back(untransformChannel(o, t).to(y.scalar_type()));
  }
  return torch::stack(out, 1);
}

} // namespace caustic
