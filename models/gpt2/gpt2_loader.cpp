#include "models/gpt2/gpt2_loader.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/io/checkpoint.h"
#include "models/model_folder.h"

namespace fs = std::filesystem;

namespace hone::models {

std::string gpt2_weights_path(const std::string& folder) { return model_weights_path(folder); }

LoadedGpt2 load_gpt2(const std::string& folder) {
  if (!fs::is_directory(folder))
    throw std::runtime_error(folder + ": not a model folder (expected a directory with config.json)");
  LoadedGpt2 out;
  out.config_path = (fs::path(folder) / "config.json").string();
  if (!fs::exists(out.config_path)) throw std::runtime_error(out.config_path + ": missing (every model folder needs one)");
  const Gpt2Config config = Gpt2Config::from_json_file(out.config_path);
  out.model = std::make_shared<Gpt2>(config);
  out.weights_path = gpt2_weights_path(folder);
  const io::StateDict sd = io::load_checkpoint(out.weights_path);

  std::map<std::string, Tensor> params;
  for (auto& [name, t] : out.model->named_parameters()) params[name] = t;
  std::set<std::string> seen;
  for (const auto& [key, tensor] : sd) {
    std::string name = key;
    if (name.rfind("transformer.", 0) == 0) name = name.substr(12);
    // HF's causal-mask buffers are not parameters.
    if (name.size() > 9 && (name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias"))) {
      out.report.ignored.push_back(key);
      continue;
    }
    if (name == "lm_head.weight" && config.tie_word_embeddings) {
      out.report.ignored.push_back(key);  // the tied head is wte
      continue;
    }
    auto it = params.find(name);
    if (it == params.end()) {
      out.report.unexpected.push_back(key);
      continue;
    }
    if (tensor.shape() != it->second.shape())
      throw std::runtime_error(out.weights_path + ": tensor '" + key + "' has shape " + shape_str(tensor.shape()) +
                               " but " + out.config_path + " implies " + shape_str(it->second.shape()));
    out.model->set_parameter(name, tensor);  // converts f16/bf16 to the model's float32
    out.report.applied.push_back(key);
    seen.insert(name);
  }
  for (auto& [name, t] : params)
    if (!seen.count(name)) out.report.missing.push_back(name);
  if (!out.report.missing.empty())
    throw std::runtime_error(out.weights_path + ": " + std::to_string(out.report.missing.size()) +
                             " parameters missing, e.g. '" + out.report.missing.front() + "' (" + out.report.summary() + ")");
  return out;
}

void export_gpt2_hf(const Gpt2& model, const std::string& out_dir) {
  fs::create_directories(out_dir);
  io::StateDict sd;
  // GPT2LMHeadModel's names: the body under "transformer.", an untied head as "lm_head.weight"
  // (a tied head is not written: transformers ties it to wte on load).
  for (auto& [name, t] : model.named_parameters())
    sd[name.rfind("lm_head.", 0) == 0 ? name : "transformer." + name] = t.detach().contiguous();
  io::save_safetensors((fs::path(out_dir) / "model.safetensors").string(), sd, {{"format", "pt"}});
  const std::string cfg = model.config().to_json();
  io::write_file_atomic((fs::path(out_dir) / "config.json").string(), [&](std::FILE* f) { std::fputs(cfg.c_str(), f); });
}

}  // namespace hone::models
