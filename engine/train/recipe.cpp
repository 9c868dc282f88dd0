#include "engine/train/recipe.h"

#include "engine/core/name_patterns.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace hone {

namespace {

const char* type_name(RecipeField::Type t) {
  switch (t) {
    case RecipeField::Type::Int: return "an integer";
    case RecipeField::Type::Float: return "a number";
    case RecipeField::Type::String: return "a string";
    case RecipeField::Type::Bool: return "true or false";
  }
  return "?";
}

std::string closest_key(const std::string& key, const std::vector<RecipeField>& schema) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const RecipeField& f : schema) {
    const size_t d = edit_distance(key, f.key);
    if (d < best_d) best_d = d, best = f.key;
  }
  return best_d <= std::max<size_t>(3, key.size() / 3) ? best : "";
}

// Parses text as `type`; returns false when it does not parse.
bool parse_value(const std::string& text, RecipeField::Type type, std::variant<int64_t, double, std::string, bool>& out) {
  switch (type) {
    case RecipeField::Type::Int: {
      char* end = nullptr;
      errno = 0;
      const long long v = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || errno) return false;
      out = int64_t(v);
      return true;
    }
    case RecipeField::Type::Float: {
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0') return false;
      out = v;
      return true;
    }
    case RecipeField::Type::String: out = text; return true;
    case RecipeField::Type::Bool:
      if (text == "true" || text == "True" || text == "yes" || text == "1") return out = true, true;
      if (text == "false" || text == "False" || text == "no" || text == "0") return out = false, true;
      return false;
  }
  return false;
}

void flatten(const YAML::Node& node, const std::string& prefix, std::vector<std::pair<std::string, YAML::Node>>& out,
             const std::string& source) {
  if (!node.IsMap()) throw std::invalid_argument(source + ": the recipe must be a YAML mapping of keys to values");
  for (const auto& kv : node) {
    const std::string key = prefix + kv.first.as<std::string>();
    if (kv.second.IsMap())
      flatten(kv.second, key + ".", out, source);
    else
      out.emplace_back(key, kv.second);
  }
}

std::vector<std::string> split_dots(const std::string& key) {
  std::vector<std::string> parts;
  std::stringstream ss(key);
  std::string p;
  while (std::getline(ss, p, '.')) parts.push_back(p);
  return parts;
}

// "param_groups.*.lr_scale" matches "param_groups.head.lr_scale".
bool key_matches(const std::string& pattern, const std::string& key) {
  if (pattern.find('*') == std::string::npos) return pattern == key;
  const auto a = split_dots(pattern), b = split_dots(key);
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != "*" && a[i] != b[i]) return false;
  return true;
}

}  // namespace

Recipe Recipe::load(const std::string& path, const std::vector<RecipeField>& schema,
                    const std::vector<std::string>& overrides) {
  Recipe r;
  r.source_ = path.empty() ? "(no recipe file)" : path;
  std::map<std::string, const RecipeField*> by_key;
  for (const RecipeField& f : schema) {
    by_key[f.key] = &f;
    r.types_[f.key] = f.type;
    if (!f.default_value.empty() || f.type == RecipeField::Type::String) {
      Value v;
      if (!parse_value(f.default_value, f.type, v))
        throw std::logic_error("recipe schema: bad default for " + f.key);
      r.values_[f.key] = v;
    }
  }
  auto set = [&](const std::string& key, const std::string& text, const std::string& where) {
    auto it = by_key.find(key);
    if (it == by_key.end())
      for (auto w = by_key.begin(); w != by_key.end(); ++w)
        if (key_matches(w->first, key)) {
          it = w;
          r.types_[key] = w->second->type;
          break;
        }
    if (it == by_key.end()) {
      const std::string hint = closest_key(key, schema);
      throw std::invalid_argument(where + ": unknown key '" + key + "'" +
                                  (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
    Value v;
    if (!parse_value(text, it->second->type, v))
      throw std::invalid_argument(where + ": key '" + key + "' expects " + type_name(it->second->type) + ", got '" +
                                  text + "'");
    r.values_[key] = v;
    r.given_[key] = true;
  };
  if (!path.empty()) {
    YAML::Node root;
    try {
      root = YAML::LoadFile(path);
    } catch (const YAML::BadFile&) {
      throw std::invalid_argument(path + ": cannot open the recipe");
    } catch (const YAML::Exception& e) {
      throw std::invalid_argument(path + ": not valid YAML: " + e.what());
    }
    if (!root.IsNull()) {
      std::vector<std::pair<std::string, YAML::Node>> items;
      flatten(root, "", items, path);
      for (const auto& [key, node] : items) {
        if (!node.IsScalar())
          throw std::invalid_argument(path + ": key '" + key + "' must be a single value, not a list");
        set(key, node.Scalar(), path + " (line " + std::to_string(node.Mark().line + 1) + ")");
      }
    }
  }
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      throw std::invalid_argument("override '" + o + "' is not of the form key=value");
    set(o.substr(0, eq), o.substr(eq + 1), "command-line override '" + o + "'");
  }
  for (const RecipeField& f : schema)
    if (f.required && !r.given_.count(f.key))
      throw std::invalid_argument(r.source_ + ": required key '" + f.key + "' is missing (" + f.help + ")");
  return r;
}

const Recipe::Value& Recipe::at(const std::string& key, RecipeField::Type type) const {
  auto t = types_.find(key);
  if (t == types_.end() || t->second != type) throw std::logic_error("recipe: no " + std::string(type_name(type)) + " key " + key);
  auto it = values_.find(key);
  if (it == values_.end()) throw std::invalid_argument(source_ + ": key '" + key + "' has no value");
  return it->second;
}

int64_t Recipe::get_int(const std::string& key) const { return std::get<int64_t>(at(key, RecipeField::Type::Int)); }
double Recipe::get_float(const std::string& key) const { return std::get<double>(at(key, RecipeField::Type::Float)); }
const std::string& Recipe::get_string(const std::string& key) const {
  return std::get<std::string>(at(key, RecipeField::Type::String));
}
bool Recipe::get_bool(const std::string& key) const { return std::get<bool>(at(key, RecipeField::Type::Bool)); }
bool Recipe::has(const std::string& key) const { return given_.count(key) > 0; }

std::vector<std::string> Recipe::wildcard_names(const std::string& wildcard_key) const {
  const auto pat = split_dots(wildcard_key);
  std::vector<std::string> names;
  for (const auto& [key, given] : given_) {
    if (!key_matches(wildcard_key, key)) continue;
    const auto parts = split_dots(key);
    for (size_t i = 0; i < pat.size(); ++i)
      if (pat[i] == "*" && std::find(names.begin(), names.end(), parts[i]) == names.end()) names.push_back(parts[i]);
  }
  return names;
}

std::string Recipe::to_yaml() const {
  // Keys are dotted paths; emit them as nested mappings (sorted, so siblings are adjacent).
  std::ostringstream out;
  std::vector<std::string> open;  // the mapping path currently open
  for (const auto& [key, v] : values_) {
    if (key.find('*') != std::string::npos) continue;  // wildcard defaults are not values
    // An empty string means "not set" (tokenizer, data.val, ...): leave it out, so reading the
    // file back does not count it as given.
    if (const auto* str = std::get_if<std::string>(&v); str && str->empty()) continue;
    const std::vector<std::string> parts = split_dots(key);
    size_t common = 0;
    while (common < open.size() && common + 1 < parts.size() && open[common] == parts[common]) ++common;
    open.resize(common);
    for (size_t i = common; i + 1 < parts.size(); ++i) {
      out << std::string(2 * i, ' ') << parts[i] << ":\n";
      open.push_back(parts[i]);
    }
    out << std::string(2 * (parts.size() - 1), ' ') << parts.back() << ": ";
    std::visit(
        [&](const auto& x) {
          using X = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<X, std::string>) {
            YAML::Emitter e;
            e << YAML::DoubleQuoted << x;
            out << e.c_str();
          } else if constexpr (std::is_same_v<X, bool>) {
            out << (x ? "true" : "false");
          } else {
            out << x;
          }
        },
        v);
    out << "\n";
  }
  return out.str();
}

}  // namespace hone
