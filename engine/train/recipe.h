// Recipes: YAML files of training settings (as torchtune and axolotl users write them), with
// command-line overrides `key=value` (dotted keys for nested maps: optimizer.lr=3e-4).
//
// Every task declares its schema (key, type, default, help). Loading checks the file against it:
// an unknown key is an error that suggests the closest known key, a value of the wrong type is
// an error naming the key, the file and what was expected. Nothing is silently ignored.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace hone {

struct RecipeField {
  enum class Type { Int, Float, String, Bool };
  std::string key;  // dotted: "optimizer.lr"; a "*" segment matches any one name ("param_groups.*.lr_scale")
  Type type;
  std::string default_value;  // as text; "" with required = true means it must be given
  std::string help;
  bool required = false;
};

class Recipe {
 public:
  // Reads `path` (may be empty: defaults and overrides only) against `schema`, then applies
  // `overrides` ("key=value"). Throws std::invalid_argument with a message naming the source.
  static Recipe load(const std::string& path, const std::vector<RecipeField>& schema,
                     const std::vector<std::string>& overrides);

  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  bool has(const std::string& key) const;  // given (in the file or an override), not just defaulted
  // The names standing for "*" in given keys of a wildcard field: for "param_groups.*.pattern",
  // the group names used in the recipe.
  std::vector<std::string> wildcard_names(const std::string& wildcard_key) const;

  // Every resolved value, as YAML text (saved in each run folder).
  std::string to_yaml() const;
  const std::string& source() const { return source_; }

 private:
  using Value = std::variant<int64_t, double, std::string, bool>;
  const Value& at(const std::string& key, RecipeField::Type type) const;
  std::map<std::string, Value> values_;
  std::map<std::string, bool> given_;
  std::map<std::string, RecipeField::Type> types_;
  std::string source_;
};

}  // namespace hone
