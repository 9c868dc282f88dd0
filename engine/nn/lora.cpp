#include "engine/nn/lora.h"

#include "engine/core/name_patterns.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "engine/autograd/grad_mode.h"
#include "engine/io/checkpoint.h"
#include "engine/nn/conv_layers.h"
#include "engine/nn/layers.h"

namespace hone::nn {

namespace {

namespace fs = std::filesystem;

// Every module of the tree with its path (named_modules()), leaving out LoRA's own
// lora_A / lora_B children.
struct Site {
  std::string path;  // dotted module path, e.g. "h.3.attn.c_attn"
  std::shared_ptr<Module> module;
};

std::vector<Site> sites_of(const Module& model) {
  std::vector<Site> out;
  for (auto& [path, m] : model.named_modules())
    if (!dynamic_cast<const LoraFactor*>(m.get())) out.push_back({path, std::move(m)});
  return out;
}

bool adaptable(const Module* m) {
  return dynamic_cast<const Linear*>(m) || dynamic_cast<const Conv1D*>(m) || dynamic_cast<const Conv2d*>(m);
}

// ---- patterns -----------------------------------------------------------------------------------
struct Pattern {
  std::string text;
  bool glob;
  std::regex re;
  explicit Pattern(const std::string& p) : text(p), glob(p.find_first_of("\\[](){}+^$|") == std::string::npos) {
    if (p.empty()) throw std::invalid_argument("inject_lora: empty target pattern");
    if (!glob) {
      try {
        re = std::regex(p, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        throw std::invalid_argument("inject_lora: target pattern '" + p + "' is not a valid regular expression: " +
                                    e.what());
      }
    }
  }
  bool matches(const std::string& path) const {
    return glob ? name_matches(text, path) : std::regex_match(path, re);
  }
};

std::string closest(const std::string& pattern, const std::vector<std::string>& names, size_t n = 5) {
  std::string out;
  for (const std::string& c : closest_names(pattern, names, n)) out += (out.empty() ? "" : ", ") + c;
  return out.empty() ? "(none)" : out;
}

uint64_t path_seed(uint64_t seed, const std::string& path) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a, then a splitmix64 finaliser
  for (unsigned char c : path) h = (h ^ c) * 1099511628211ull;
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (h | 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

struct Planned {
  Site site;
  std::shared_ptr<LoraAdapter> adapter;
};

void check_config(const LoraConfig& c, const std::string& where) {
  if (c.rank < 1) throw std::invalid_argument(where + ": lora rank must be >= 1, got " + std::to_string(c.rank));
  if (!std::isfinite(c.alpha)) throw std::invalid_argument(where + ": lora alpha must be finite");
  if (!(c.dropout >= 0.0 && c.dropout < 1.0))
    throw std::invalid_argument(where + ": lora dropout must be in [0, 1), got " + std::to_string(c.dropout));
}

// Builds (without touching the model) one adapter per adaptable module that `wanted` accepts.
// Errors (grouped Conv2d, a layer with a forward hook) name the module path.
template <class Wanted>
std::vector<Planned> plan(const Module& model, const LoraConfig& c, Wanted wanted) {
  std::vector<Planned> out;
  for (const Site& s : sites_of(model))
    if (adaptable(s.module.get()) && wanted(s.path)) {
      try {
        out.push_back({s, std::make_shared<LoraAdapter>(s.module, c.rank, c.alpha, c.dropout, path_seed(c.seed, s.path))});
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("'" + s.path + "': " + e.what());
      }
    }
  return out;
}

void refuse_if_injected(const Module& model, const std::string& where) {
  const auto existing = lora_modules(model);
  if (!existing.empty())
    throw std::invalid_argument(where + ": the model already has LoRA adapters (" + existing[0].first +
                                ", ...); merge_lora first or start from a fresh model");
}

// Attaches the adapters and freezes everything but lora_A/lora_B. The plan was checked when it was
// built (LoraAdapter's constructor refuses what attach() would), so this does not fail halfway.
void install(Module& model, const std::vector<Planned>& planned) {
  for (const Planned& p : planned) p.adapter->attach();
  for (auto& [name, t] : model.named_parameters()) t.requires_grad_(false);
  for (const Planned& p : planned) {
    Tensor a = p.adapter->lora_A(), b = p.adapter->lora_B();
    a.requires_grad_(true);
    b.requires_grad_(true);
  }
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const char* kPrefix = "base_model.model.";
const char* kWeightsFile = "adapter_model.safetensors";
const char* kConfigFile = "adapter_config.json";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

// ---- LoraAdapter ----------------------------------------------------------------------------------

namespace {

// The forward hook LoRA installs: a named type, so that LoraAdapter::of can recognise it.
struct LoraHook {
  std::shared_ptr<LoraAdapter> adapter;
  Tensor operator()(const Tensor& x, const Tensor& y) const { return ops::add(y, adapter->lora_delta(x)); }
};

// Why `layer` cannot take an adapter now ("" if it can).
std::string attach_refusal(const Module& layer) {
  if (layer.forward_hook()) {
    return LoraAdapter::of(layer) ? "the layer already has a LoRA adapter"
                                  : "the layer already has a forward hook (LoRA installs its own)";
  }
  for (const auto& [n, child] : layer.named_children())
    if (n == "lora_A" || n == "lora_B") return "the layer already has a child named '" + n + "'";
  for (const auto& [n, t] : layer.named_parameters())
    if (n == "lora_A" || n == "lora_B") return "the layer already has a parameter named '" + n + "'";
  return "";
}

}  // namespace

LoraAdapter::LoraAdapter(const std::shared_ptr<Module>& layer, int64_t rank, double alpha, double dropout, uint64_t seed)
    : layer_(layer), rank_(rank), alpha_(alpha), dropout_(dropout) {
  if (!layer) throw std::invalid_argument("LoraAdapter: no layer");
  if (rank < 1) throw std::invalid_argument("LoraAdapter: rank must be >= 1, got " + std::to_string(rank));
  if (!(dropout >= 0.0 && dropout < 1.0))
    throw std::invalid_argument("LoraAdapter: dropout must be in [0, 1), got " + std::to_string(dropout));
  Tensor weight;
  for (const auto& [n, t] : layer->named_parameters())
    if (n == "weight") weight = t;
  if (!weight.defined()) throw std::invalid_argument("LoraAdapter: the layer has no 'weight'");
  int64_t in = 0, out = 0;
  Shape a_shape, b_shape;
  if (dynamic_cast<const Linear*>(layer.get())) {
    kind_ = Kind::Linear;
    out = weight.size(0), in = weight.size(1);
    a_shape = {rank, in}, b_shape = {out, rank};
  } else if (dynamic_cast<const Conv1D*>(layer.get())) {
    kind_ = Kind::Conv1D;
    in = weight.size(0), out = weight.size(1);
    a_shape = {rank, in}, b_shape = {out, rank};
  } else if (const auto* conv = dynamic_cast<const Conv2d*>(layer.get())) {
    kind_ = Kind::Conv2d;
    conv_args_ = conv->args();
    if (conv_args_.groups != 1)
      throw std::invalid_argument("LoraAdapter: grouped Conv2d (groups = " + std::to_string(conv_args_.groups) +
                                  ", weight " + shape_str(weight.shape()) + ") is not supported by LoRA");
    out = weight.size(0), in = weight.size(1);
    a_shape = {rank, in, weight.size(2), weight.size(3)}, b_shape = {out, rank, 1, 1};
  } else {
    throw std::invalid_argument("LoraAdapter: the layer is not a Linear, Conv1D or Conv2d");
  }
  if (const std::string why = attach_refusal(*layer); !why.empty()) throw std::invalid_argument("LoraAdapter: " + why);
  weight_shape_ = weight.shape();
  // PEFT's init: A ~ kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)); B = 0.
  int64_t fan_in = 1;
  for (size_t d = 1; d < a_shape.size(); ++d) fan_in *= a_shape[d];
  const double bound = 1.0 / std::sqrt(double(fan_in));
  Tensor a = Tensor::rand(a_shape, seed, -bound, bound, DType::F32);
  Tensor b = Tensor::zeros(b_shape, DType::F32);
  if (!weight.device().is_cpu()) a = a.to(weight.device()), b = b.to(weight.device());
  a_ = std::make_shared<LoraFactor>(a);
  b_ = std::make_shared<LoraFactor>(b);
}

std::shared_ptr<Module> LoraAdapter::layer() const {
  std::shared_ptr<Module> l = layer_.lock();
  if (!l) throw std::logic_error("LoraAdapter: its layer no longer exists");
  return l;
}

Tensor LoraAdapter::base_weight() const {
  for (const auto& [n, t] : layer()->named_parameters())
    if (n == "weight") return t;
  throw std::logic_error("LoraAdapter: the layer has no 'weight'");
}

void LoraAdapter::attach() {
  if (attached_) throw std::logic_error("LoraAdapter: already attached");
  const std::shared_ptr<Module> l = layer();
  if (const std::string why = attach_refusal(*l); !why.empty()) throw std::invalid_argument("LoraAdapter: " + why);
  a_->train(l->training());
  b_->train(l->training());
  l->add_module("lora_A", a_);
  l->add_module("lora_B", b_);
  l->set_forward_hook(LoraHook{shared_from_this()});
  attached_ = true;
}

void LoraAdapter::detach() {
  if (!attached_) return;
  const std::shared_ptr<LoraAdapter> keep = shared_from_this();  // the hook may hold the only other reference
  const std::shared_ptr<Module> l = layer();
  l->remove_module("lora_A");
  l->remove_module("lora_B");
  attached_ = false;
  l->set_forward_hook({});
}

void LoraAdapter::merge() {
  {
    NoGradGuard no_grad;
    Tensor w = base_weight();
    const Tensor d = delta_weight().contiguous().to(w.dtype());
    ops::add_(w, d);
  }
  detach();
}

std::shared_ptr<LoraAdapter> LoraAdapter::of(const Module& layer) {
  const auto* hook = layer.forward_hook().target<LoraHook>();
  return hook ? hook->adapter : nullptr;
}

Tensor LoraAdapter::lora_delta(const Tensor& x) const {
  const bool training = layer()->training();
  const Tensor h = dropout_ > 0 && training ? ops::dropout(x, dropout_, true) : x;
  Tensor low;
  if (kind_ == Kind::Conv2d) {
    low = ops::conv2d(ops::conv2d(h, lora_A(), Tensor(), conv_args_), lora_B(), Tensor(), ops::Conv2dArgs{});
  } else {
    low = ops::linear(ops::linear(h, lora_A()), lora_B());  // h A^T B^T (Conv1D: same, [.., out])
  }
  return ops::mul(low, scaling());
}

Tensor LoraAdapter::delta_weight() const {
  const Tensor& a = lora_A();
  const Tensor& b = lora_B();
  const Tensor ba = ops::mul(ops::matmul(b.reshape({b.size(0), rank_}), a.reshape({rank_, -1})), scaling());
  switch (kind_) {
    case Kind::Linear: return ba;                              // [out, in]
    case Kind::Conv1D: return ba.transpose(0, 1);              // [in, out]
    case Kind::Conv2d: return ba.reshape(weight_shape_);       // [out, in, kh, kw]
  }
  throw std::logic_error("LoraAdapter: bad kind");
}

// ---- model-level API ----------------------------------------------------------------------------------

std::vector<std::pair<std::string, std::shared_ptr<LoraAdapter>>> lora_modules(const Module& model) {
  std::vector<std::pair<std::string, std::shared_ptr<LoraAdapter>>> out;
  for (const Site& s : sites_of(model))
    if (auto a = LoraAdapter::of(*s.module)) out.emplace_back(s.path, std::move(a));
  return out;
}

int64_t inject_lora(Module& model, const LoraConfig& config) {
  const std::string where = "inject_lora";
  check_config(config, where);
  if (config.target_patterns.empty()) throw std::invalid_argument("inject_lora: no target patterns given");
  refuse_if_injected(model, where);

  std::vector<Pattern> patterns;
  for (const std::string& p : config.target_patterns) patterns.emplace_back(p);
  std::vector<std::string> adaptable_paths, other_paths;
  for (const Site& s : sites_of(model)) (adaptable(s.module.get()) ? adaptable_paths : other_paths).push_back(s.path);
  for (const Pattern& p : patterns) {
    if (std::any_of(adaptable_paths.begin(), adaptable_paths.end(), [&](const std::string& n) { return p.matches(n); }))
      continue;
    std::string msg = "inject_lora: target pattern '" + p.text + "' matches no Linear/Conv1D/Conv2d module";
    std::vector<std::string> others;
    for (const std::string& n : other_paths)
      if (p.matches(n)) others.push_back(n);
    if (!others.empty()) msg += " (it matches only other modules: " + closest(p.text, others, 3) + ")";
    msg += "; closest module names: " + closest(p.text, adaptable_paths);
    throw std::invalid_argument(msg);
  }
  std::vector<Planned> planned;
  try {
    planned = plan(model, config, [&](const std::string& path) {
      return std::any_of(patterns.begin(), patterns.end(), [&](const Pattern& p) { return p.matches(path); });
    });
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + ": " + e.what());
  }
  install(model, planned);
  return static_cast<int64_t>(planned.size());
}

void merge_lora(Module& model) {
  for (auto& [path, adapter] : lora_modules(model)) adapter->merge();
}

void save_lora_adapters(const Module& model, const std::string& dir, const LoraConfig& config) {
  const auto adapters = lora_modules(model);
  if (adapters.empty()) throw std::invalid_argument("save_lora_adapters: the model has no LoRA adapters");
  io::StateDict sd;
  bool fan_in_fan_out = false;
  for (const auto& [path, w] : adapters) {
    sd[kPrefix + path + ".lora_A.weight"] = w->lora_A().detach().to(Device::cpu());
    sd[kPrefix + path + ".lora_B.weight"] = w->lora_B().detach().to(Device::cpu());
    fan_in_fan_out = fan_in_fan_out || w->kind() == LoraAdapter::Kind::Conv1D;
  }
  const int64_t rank = adapters[0].second->rank();
  fs::create_directories(dir);
  io::save_safetensors((fs::path(dir) / kWeightsFile).string(), sd, {{"format", "pt"}});
  nlohmann::json j = {
      {"peft_type", "LORA"},
      {"r", rank},
      {"lora_alpha", adapters[0].second->alpha()},
      {"lora_dropout", config.dropout},
      {"target_modules", config.target_patterns},
      {"bias", "none"},
      {"fan_in_fan_out", fan_in_fan_out},
      {"init_lora_weights", true},
      {"inference_mode", true},
      {"use_rslora", false},
      {"use_dora", false},
      {"modules_to_save", nullptr},
      {"task_type", nullptr},
      {"base_model_name_or_path", nullptr},
      {"rank_pattern", nlohmann::json::object()},
      {"alpha_pattern", nlohmann::json::object()},
      {"hone_seed", config.seed},
  };
  const std::string text = j.dump(2) + "\n";
  io::write_file_atomic((fs::path(dir) / kConfigFile).string(), [&](std::FILE* f) {
    if (std::fwrite(text.data(), 1, text.size(), f) != text.size())
      throw std::runtime_error("write failed");
  });
}

LoraConfig load_lora_adapters(Module& model, const std::string& dir) {
  const std::string config_path = (fs::path(dir) / kConfigFile).string();
  const std::string weights_path = (fs::path(dir) / kWeightsFile).string();
  refuse_if_injected(model, "load_lora_adapters");

  // adapter_config.json
  LoraConfig config;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text(config_path));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(config_path + ": not valid JSON: " + e.what());
  }
  auto bad = [&](const std::string& what) { return std::runtime_error(config_path + ": " + what); };
  if (!j.is_object()) throw bad("expected a JSON object");
  if (j.contains("peft_type") && j["peft_type"] != "LORA")
    throw bad("peft_type is " + j["peft_type"].dump() + ", expected \"LORA\"");
  try {
    if (!j.contains("r") || !j["r"].is_number_integer()) throw bad("\"r\" (the rank) must be an integer");
    config.rank = j["r"].get<int64_t>();
    config.alpha = j.contains("lora_alpha") ? j["lora_alpha"].get<double>() : 8.0;  // PEFT's default
    config.dropout = j.contains("lora_dropout") && !j["lora_dropout"].is_null() ? j["lora_dropout"].get<double>() : 0.0;
    if (j.contains("target_modules")) {
      const auto& t = j["target_modules"];
      if (t.is_string()) config.target_patterns = {t.get<std::string>()};
      else if (t.is_array()) config.target_patterns = t.get<std::vector<std::string>>();
    }
    if (j.contains("hone_seed") && j["hone_seed"].is_number_unsigned()) config.seed = j["hone_seed"].get<uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("bad field type: ") + e.what());
  }
  auto flag = [&](const char* key) { return j.contains(key) && j[key].is_boolean() && j[key].get<bool>(); };
  if (flag("use_dora")) throw bad("use_dora is set: DoRA adapters are not supported");
  if (flag("use_rslora")) throw bad("use_rslora is set: rank-stabilised scaling is not supported");
  for (const char* key : {"rank_pattern", "alpha_pattern"})
    if (j.contains(key) && j[key].is_object() && !j[key].empty())
      throw bad(std::string(key) + " is not empty: per-module ranks/alphas are not supported");
  if (j.contains("bias") && j["bias"].is_string() && j["bias"] != "none")
    throw bad("bias is \"" + j["bias"].get<std::string>() + "\": only \"none\" is supported");
  try {
    check_config(config, config_path);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(e.what());
  }

  // adapter_model.safetensors: the modules to wrap are exactly those the file has tensors for.
  if (!fs::exists(weights_path)) throw std::runtime_error(weights_path + ": no such file");
  const io::StateDict sd = io::load_safetensors(weights_path);
  std::set<std::string> adaptable_paths;
  std::vector<std::string> adaptable_list;
  for (const Site& s : sites_of(model))
    if (adaptable(s.module.get())) adaptable_paths.insert(s.path), adaptable_list.push_back(s.path);
  std::map<std::string, std::pair<std::string, std::string>> keys_of;  // path -> (A key, B key)
  for (const auto& [key, t] : sd) {
    const bool is_a = ends_with(key, ".lora_A.weight"), is_b = ends_with(key, ".lora_B.weight");
    if (key.rfind(kPrefix, 0) != 0 || !(is_a || is_b))
      throw std::runtime_error(weights_path + ": tensor '" + key +
                               "' is not a LoRA factor (expected base_model.model.<module>.lora_A.weight / .lora_B.weight)");
    std::string path = key.substr(std::string(kPrefix).size());
    path.resize(path.size() - std::string(".lora_A.weight").size());
    if (!adaptable_paths.count(path) && path.rfind("transformer.", 0) == 0 && adaptable_paths.count(path.substr(12)))
      path = path.substr(12);  // Hugging Face GPT2LMHeadModel's prefix
    if (!adaptable_paths.count(path))
      throw std::runtime_error(weights_path + ": tensor '" + key + "': the model has no Linear/Conv1D/Conv2d '" +
                               path + "'; closest: " + closest(path, adaptable_list));
    (is_a ? keys_of[path].first : keys_of[path].second) = key;
  }
  if (keys_of.empty()) throw std::runtime_error(weights_path + ": no LoRA tensors");
  for (const auto& [path, ab] : keys_of)
    if (ab.first.empty() || ab.second.empty())
      throw std::runtime_error(weights_path + ": tensor '" + kPrefix + path + (ab.first.empty() ? ".lora_A" : ".lora_B") +
                               ".weight' is missing (its partner '" + (ab.first.empty() ? ab.second : ab.first) +
                               "' is there)");

  std::vector<Planned> planned;
  try {
    planned = plan(model, config, [&](const std::string& path) { return keys_of.count(path) > 0; });
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(weights_path + ": " + e.what());
  }
  {
    NoGradGuard no_grad;
    for (const Planned& p : planned) {
      const auto& [a_key, b_key] = keys_of.at(p.site.path);
      for (const auto& [key, target] : {std::pair{a_key, p.adapter->lora_A()}, std::pair{b_key, p.adapter->lora_B()}}) {
        const Tensor& src = sd.at(key);
        if (src.shape() != target.shape())
          throw std::runtime_error(weights_path + ": tensor '" + key + "' has shape " + shape_str(src.shape()) +
                                   ", expected " + shape_str(target.shape()) + " (rank " +
                                   std::to_string(config.rank) + " from " + config_path + ", layer '" +
                                   p.site.path + "' weight " + shape_str(p.adapter->base_weight().shape()) + ")");
        if (!is_floating(src.dtype()))
          throw std::runtime_error(weights_path + ": tensor '" + key + "' is not floating point");
        Tensor dst = target;
        dst.copy_(src.to(target.device()));
      }
    }
  }
  install(model, planned);
  return config;
}

}  // namespace hone::nn
