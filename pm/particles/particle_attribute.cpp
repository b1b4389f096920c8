#include "pm/particles/particle_attribute.hpp"

#include <algorithm>

namespace caustic {

const char* attributeTypeName(AttributeType type) {
  switch (type) {
  case AttributeType::Float64:
    return "float64";
  case AttributeType::Float32:
    return "float32";
  case AttributeType::Int32:
    return "int32";
  case AttributeType::Int64:
    return "int64";
  case AttributeType::UInt64:
    return "uint64";
  }
  return "unknown";
}

std::size_t attributeTypeSize(AttributeType type) {
  return type == AttributeType::Float32 || type == AttributeType::Int32 ? 4 : 8;
}

namespace {
template <class T>
AttributeView<T> allocate(const std::string& name, std::size_t capacity, int components) {
  return AttributeView<T>("caustic::Particles::" + name, capacity, components);
}
} // namespace

ParticleAttribute::ParticleAttribute(const std::string& name, AttributeType type, int components,
                                     std::size_t capacity, const std::string& units)
    : _name(name), _units(units), _type(type), _components(components) {
  const bool word = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
  if (!word)
    throw std::invalid_argument("ParticleAttribute: name \"" + name +
                                "\": allowed: letters, digits and '_'");
  if (components < 1)
    throw std::invalid_argument("ParticleAttribute: attribute \"" + name + "\" with " +
                                std::to_string(components) + " components; allowed: >= 1");
  switch (type) {
  case AttributeType::Float64:
    _values = allocate<double>(name, capacity, components);
    break;
  case AttributeType::Float32:
    _values = allocate<float>(name, capacity, components);
    break;
  case AttributeType::Int32:
    _values = allocate<std::int32_t>(name, capacity, components);
    break;
  case AttributeType::Int64:
    _values = allocate<std::int64_t>(name, capacity, components);
    break;
  case AttributeType::UInt64:
    _values = allocate<std::uint64_t>(name, capacity, components);
    break;
  }
}

std::size_t ParticleAttribute::capacity() const {
  return std::visit([](const auto& v) { return v.extent(0); }, _values);
}

std::byte* ParticleAttribute::bytes() const {
  return std::visit([](const auto& v) { return reinterpret_cast<std::byte*>(v.data()); }, _values);
}

void ParticleAttribute::reserve(std::size_t capacity) {
  if (capacity <= this->capacity())
    return;
  const auto c = static_cast<std::size_t>(_components);
  std::visit([&](auto& v) { Kokkos::resize(v, capacity, c); }, _values);
}

ParticleAttribute ParticleAttribute::emptyCopy(std::size_t capacity) const {
  return ParticleAttribute(_name, _type, _components, capacity, _units);
}

} // namespace caustic
