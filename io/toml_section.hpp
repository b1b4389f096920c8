#pragma once
// Validated reading of TOML sections, shared by the run parameters and the training
// configuration: every error names the key, the value and what is allowed.
#include "io/format.hpp"
#include "io/params.hpp"

#include <toml++/toml.h>

#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace caustic::tomlsec {

inline std::string show(const toml::node& n) {
  std::ostringstream s;
  if (n.is_table())
    s << "{table}";
  else if (auto a = n.as_array())
    s << *a;
  else if (auto v = n.as_string())
    s << '"' << v->get() << '"';
  else if (auto v = n.as_integer())
    s << v->get();
  else if (auto v = n.as_floating_point())
    s << v->get();
  else if (auto v = n.as_boolean())
    s << (v->get() ? "true" : "false");
  else
    s << "<" << n.type() << ">";
  return s.str();
}

inline std::string typeName(const toml::node& n) {
  switch (n.type()) {
  case toml::node_type::table:
    return "table";
  case toml::node_type::array:
    return "array";
  case toml::node_type::string:
    return "string";
  case toml::node_type::integer:
    return "integer";
  case toml::node_type::floating_point:
    return "number";
  case toml::node_type::boolean:
    return "boolean";
  default:
    return "date/time";
  }
}

// Reads the keys of one section, remembering which were used so that unknown keys (typos)
// are refused.
class Section {
public:
  // `prefix` names the parent of nested sections ("emulators." for [emulators.NAME]).
  Section(toml::table* root, const std::string& name, bool required = true,
          const std::string& prefix = "")
      : _name(prefix + name) {
    toml::node* n = root->get(name);
    if (n) {
      if (!n->is_table())
        throw ParamError("[" + _name + "]: expected a table (section), found a " + typeName(*n));
      _t = n->as_table();
    } else if (required) {
      throw ParamError("[" + name + "]: missing section");
    }
  }

  std::string key(const std::string& k) const { return _name + "." + k; }

  const toml::node* find(const std::string& k) {
    _known.insert(k);
    return _t ? _t->get(k) : nullptr;
  }

  double number(const std::string& k, std::optional<double> def, const std::string& expect) {
    const toml::node* n = find(k);
    if (!n) {
      if (def)
        return *def;
      throw ParamError(key(k) + ": missing; expected " + expect);
    }
    if (!(n->is_integer() || n->is_floating_point()))
      throw ParamError(key(k) + " = " + show(*n) + ": wrong type (" + typeName(*n) +
                       "); expected " + expect);
    const double v =
        n->is_integer() ? double(n->as_integer()->get()) : n->as_floating_point()->get();
    if (!std::isfinite(v))
      throw ParamError(key(k) + " = " + show(*n) + ": not finite; expected " + expect);
    return v;
  }

  std::int64_t integer(const std::string& k, std::optional<std::int64_t> def,
                       const std::string& expect) {
    const toml::node* n = find(k);
    if (!n) {
      if (def)
        return *def;
      throw ParamError(key(k) + ": missing; expected " + expect);
    }
    if (!n->is_integer())
      throw ParamError(key(k) + " = " + show(*n) + ": wrong type (" + typeName(*n) +
                       "); expected " + expect);
    return n->as_integer()->get();
  }

  bool boolean(const std::string& k, bool def) {
    const toml::node* n = find(k);
    if (!n)
      return def;
    if (!n->is_boolean())
      throw ParamError(key(k) + " = " + show(*n) + ": wrong type (" + typeName(*n) +
                       "); expected true or false");
    return n->as_boolean()->get();
  }

  std::string choice(const std::string& k, const std::string& def,
                     const std::vector<std::string>& allowed) {
    std::string list;
    for (const auto& a : allowed)
      list += (list.empty() ? "\"" : ", \"") + a + "\"";
    const toml::node* n = find(k);
    if (!n)
      return def;
    if (!n->is_string())
      throw ParamError(key(k) + " = " + show(*n) + ": wrong type (" + typeName(*n) +
                       "); expected one of " + list);
    const std::string v = n->as_string()->get();
    for (const auto& a : allowed)
      if (v == a)
        return v;
    throw ParamError(key(k) + " = \"" + v + "\": not allowed; expected one of " + list);
  }

  std::optional<std::string> string(const std::string& k) {
    const toml::node* n = find(k);
    if (!n)
      return std::nullopt;
    if (!n->is_string())
      throw ParamError(key(k) + " = " + show(*n) + ": wrong type (" + typeName(*n) +
                       "); expected a string");
    return n->as_string()->get();
  }

  std::optional<std::vector<std::string>> strings(const std::string& k) {
    const toml::node* n = find(k);
    if (!n)
      return std::nullopt;
    std::vector<std::string> out;
    if (n->is_string())
      return std::vector<std::string>{n->as_string()->get()};
    if (!n->is_array())
      throw ParamError(key(k) + " = " + show(*n) + ": wrong type (" + typeName(*n) +
                       "); expected a list of strings");
    for (const auto& e : *n->as_array()) {
      if (!e.is_string())
        throw ParamError(key(k) + " = " + show(*n) + ": element " + show(e) + " is a " +
                         typeName(e) + "; expected a string");
      out.push_back(e.as_string()->get());
    }
    return out;
  }

  std::optional<std::vector<double>> numbers(const std::string& k, const std::string& expect) {
    const toml::node* n = find(k);
    if (!n)
      return std::nullopt;
    std::vector<double> out;
    if (n->is_integer() || n->is_floating_point()) {
      out.push_back(number(k, std::nullopt, expect));
      return out;
    }
    if (!n->is_array())
      throw ParamError(key(k) + " = " + show(*n) + ": wrong type (" + typeName(*n) +
                       "); expected " + expect);
    for (const auto& e : *n->as_array()) {
      if (!(e.is_integer() || e.is_floating_point()))
        throw ParamError(key(k) + " = " + show(*n) + ": element " + show(e) + " is a " +
                         typeName(e) + "; expected " + expect);
      out.push_back(e.is_integer() ? double(e.as_integer()->get()) : e.as_floating_point()->get());
    }
    return out;
  }

  // Refuses keys this section does not know.
  void finish() const {
    if (!_t)
      return;
    for (auto&& [k, v] : *_t) {
      const std::string ks(k.str());
      if (!_known.count(ks)) {
        std::string allowed;
        for (const auto& a : _known)
          allowed += (allowed.empty() ? "" : ", ") + a;
        throw ParamError(key(ks) + " = " + show(v) + ": unknown key; allowed keys in [" + _name +
                         "]: " + allowed);
      }
    }
  }

private:
  std::string _name;
  toml::table* _t = nullptr;
  std::set<std::string> _known;
};

inline void requireRange(bool ok, const std::string& key, double v, const std::string& allowed) {
  if (!ok)
    throw ParamError(key + " = " + formatNumber(v) + ": out of range; allowed: " + allowed);
}

// Parses TOML text; a syntax error becomes a ParamError with file, line and column.
inline toml::table parseTomlText(const std::string& text, const std::string& source) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream s;
    s << source << ":" << e.source().begin.line << ":" << e.source().begin.column
      << ": TOML syntax error: " << e.description();
    throw ParamError(s.str());
  }
}

inline void applyOverride(toml::table& root, const std::string& ov) {
  const auto eq = ov.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ParamError("--set " + ov + ": expected section.key=value");
  const std::string path = ov.substr(0, eq);
  const std::string value = ov.substr(eq + 1);
  std::vector<std::string> parts;
  std::stringstream ps(path);
  for (std::string p; std::getline(ps, p, '.');)
    parts.push_back(p);
  if (parts.size() < 2)
    throw ParamError("--set " + ov + ": expected section.key=value (e.g. simulation.steps=20)");
  toml::table* t = &root;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i].empty())
      throw ParamError("--set " + ov + ": empty name in the key path");
    toml::node* n = t->get(parts[i]);
    if (!n) {
      t->insert(parts[i], toml::table{});
      n = t->get(parts[i]);
    }
    if (!n->is_table())
      throw ParamError("--set " + ov + ": " + parts[i] + " is not a section");
    t = n->as_table();
  }
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error& e) {
    // A bare word (a name, a path such as ../x.json) is a string; something made of digits,
    // signs, points and exponents that is not a TOML number
    // (out of range: 2^64, 1e400; malformed: 1.2.3) is an error, not a string.
    const bool numeric =
        !value.empty() && value.find_first_not_of("0123456789+-._eE") == std::string::npos &&
        value.find_first_of("0123456789") != std::string::npos;
    if (numeric)
      throw ParamError("--set " + ov + ": " + value + " is not a number TOML can hold (" +
                       std::string(e.description()) + ")");
    parsed = toml::table{};
    parsed.insert("v", value);
  }
  t->insert_or_assign(parts.back(), *parsed.get("v"));
}

} // namespace caustic::tomlsec
