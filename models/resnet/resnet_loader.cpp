#include "models/resnet/resnet_loader.h"

#include <map>
#include <set>

#include "engine/io/checkpoint.h"

namespace hone::models {

LoadedResNet load_resnet(const std::string& path, const ResNetConfig& config, int64_t num_classes, uint64_t seed) {
  LoadedResNet out;
  out.weights_path = path;
  io::StateDict raw = io::load_checkpoint(path);
  io::StateDict sd;
  for (auto& [k, t] : raw) sd[k.rfind("module.", 0) == 0 ? k.substr(7) : k] = t;

  // The checkpoint's head size decides the model's first; a different task head comes after.
  ResNetConfig c = config;
  const std::string head = c.cifar_style() ? "linear" : "fc";
  auto hw = sd.find(head + ".weight");
  if (hw == sd.end())
    throw std::runtime_error(path + ": no '" + head + ".weight' tensor: is this a " + c.arch + " checkpoint?");
  c.num_classes = hw->second.size(0);
  out.model = std::make_shared<ResNet>(c, seed);

  std::map<std::string, Tensor> slots;
  for (auto& [n, t] : out.model->named_parameters()) slots[n] = t;
  for (auto& [n, t] : out.model->named_buffers()) slots[n] = t;
  // Check every shape before changing anything.
  for (auto& [k, t] : sd) {
    auto it = slots.find(k);
    if (it == slots.end()) continue;
    if (t.shape() != it->second.shape())
      throw std::runtime_error(path + ": tensor '" + k + "' has shape " + shape_str(t.shape()) + " but " + c.arch +
                               " expects " + shape_str(it->second.shape()));
  }
  std::set<std::string> seen;
  for (auto& [k, t] : sd) {
    if (!slots.count(k)) {
      out.report.unexpected.push_back(k);
      continue;
    }
    out.model->set_parameter(k, t);
    out.report.applied.push_back(k);
    seen.insert(k);
  }
  bool tracked_missing = false;
  for (auto& [n, t] : slots) {
    if (seen.count(n)) continue;
    if (n.ends_with("num_batches_tracked")) {
      tracked_missing = true;  // older checkpoints predate this buffer
      continue;
    }
    out.report.missing.push_back(n);
  }
  if (tracked_missing) out.report.notes.push_back("num_batches_tracked absent: started at 0");
  if (!out.report.missing.empty())
    throw std::runtime_error(path + ": " + std::to_string(out.report.missing.size()) + " tensors missing for " + c.arch +
                             ", e.g. '" + out.report.missing.front() + "'");
  if (!out.report.unexpected.empty())
    throw std::runtime_error(path + ": " + std::to_string(out.report.unexpected.size()) +
                             " tensors do not belong to " + c.arch + ", e.g. '" + out.report.unexpected.front() + "'");
  if (num_classes > 0 && num_classes != c.num_classes) {
    out.model->replace_head(num_classes, seed + 99);
    out.report.notes.push_back("head '" + head + "' replaced: " + std::to_string(c.num_classes) + " -> " +
                               std::to_string(num_classes) + " classes, freshly initialised");
  }
  return out;
}

}  // namespace hone::models
