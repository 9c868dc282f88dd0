#include "models/model_folder.h"

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace hone::models {

nlohmann::json read_config_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot open the model config");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw std::runtime_error(path + ": expected a JSON object");
  return j;
}

std::string model_weights_path(const std::string& folder) {
  const fs::path f(folder);
  std::ifstream latest(f / "checkpoints" / "latest");
  if (latest) {
    std::string name;
    std::getline(latest, name);
    return (f / "checkpoints" / name / "model.safetensors").string();
  }
  // Name the file itself, so that every message about a tensor names the file it came from.
  for (const char* name : {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                           "pytorch_model.bin.index.json"})
    if (fs::exists(f / name)) return (f / name).string();
  return folder;
}

}  // namespace hone::models
