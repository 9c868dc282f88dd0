// What every model family reads from a model folder: its config.json (parsed, with typed key
// access that names the file and key on a wrong type) and where its weights are (the HF files, or a
// hone run's latest checkpoint).
#pragma once
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace hone::models {

// Parses `path` as a JSON object; std::runtime_error naming the file otherwise.
nlohmann::json read_config_json(const std::string& path);

// Sets `out` from j[key] when present and not null; throws naming the file and key on a wrong type.
template <class T>
void read_key(const nlohmann::json& j, const char* key, T& out, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return;
  try {
    out = j[key].get<T>();
  } catch (const std::exception&) {
    throw std::runtime_error(path + ": key '" + key + "' has the wrong type (" + j[key].dump() + ")");
  }
}

// The weights file of a model folder: checkpoints/latest of a hone run, else model.safetensors,
// its sharded index, pytorch_model.bin or its index; the folder itself when none exists (the
// checkpoint reader then says which files it looked for).
std::string model_weights_path(const std::string& folder);

}  // namespace hone::models
