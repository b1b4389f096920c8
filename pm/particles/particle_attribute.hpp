#pragma once
// A named per-particle column beyond x, p and id: species, mass per particle, halo ID, a
// model's outputs. `components` values of one type per particle, stored row-major (a
// View<T**, LayoutRight> of capacity x components), so that a particle's values are contiguous
// bytes that migration moves as one row. Types: double, float, int32, int64, uint64.
#include <Kokkos_Core.hpp>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <variant>

namespace caustic {

enum class AttributeType { Float64, Float32, Int32, Int64, UInt64 };

template <class T> using AttributeView = Kokkos::View<T**, Kokkos::LayoutRight>;

template <class T> struct AttributeTypeOf;
template <> struct AttributeTypeOf<double> {
  static constexpr AttributeType value = AttributeType::Float64;
};
template <> struct AttributeTypeOf<float> {
  static constexpr AttributeType value = AttributeType::Float32;
};
template <> struct AttributeTypeOf<std::int32_t> {
  static constexpr AttributeType value = AttributeType::Int32;
};
template <> struct AttributeTypeOf<std::int64_t> {
  static constexpr AttributeType value = AttributeType::Int64;
};
template <> struct AttributeTypeOf<std::uint64_t> {
  static constexpr AttributeType value = AttributeType::UInt64;
};

// "float64", "float32", "int32", "int64", "uint64".
const char* attributeTypeName(AttributeType type);
// Bytes of one value.
std::size_t attributeTypeSize(AttributeType type);

class ParticleAttribute {
public:
  // Zero-filled. Throws std::invalid_argument naming the attribute unless the name is made of
  // letters, digits and '_' (it names datasets in files) and components >= 1.
  ParticleAttribute(const std::string& name, AttributeType type, int components,
                    std::size_t capacity, const std::string& units = "");

  const std::string& name() const { return _name; }
  AttributeType type() const { return _type; }
  int components() const { return _components; }
  const std::string& units() const { return _units; } // for files; may be empty
  std::size_t capacity() const;
  std::size_t rowBytes() const { return _components * attributeTypeSize(_type); }
  // Row-major storage: capacity() rows of rowBytes() bytes.
  std::byte* bytes() const;

  // The values; throws std::invalid_argument naming the attribute if T is not its type.
  template <class T> AttributeView<T> view() const {
    if (AttributeTypeOf<T>::value != _type)
      throw std::invalid_argument("ParticleAttribute::view: attribute \"" + _name + "\" holds " +
                                  attributeTypeName(_type) + ", not " +
                                  attributeTypeName(AttributeTypeOf<T>::value));
    return std::get<AttributeView<T>>(_values);
  }
  // Grows the capacity to at least `capacity`, keeping the values.
  void reserve(std::size_t capacity);
  // The same name, type, components and units, zero-filled with `capacity` rows.
  ParticleAttribute emptyCopy(std::size_t capacity) const;

private:
  std::string _name, _units;
  AttributeType _type;
  int _components;
  std::variant<AttributeView<double>, AttributeView<float>, AttributeView<std::int32_t>,
               AttributeView<std::int64_t>, AttributeView<std::uint64_t>>
      _values;
};

} // namespace caustic
