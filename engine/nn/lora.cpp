#include "engine/nn/lora.h"

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

// ---- reaching into the tree ---------------------------------------------------------------------
// Module offers no public view of its children and the layers none of their settings, but LoRA
// must walk the tree, re-point a layer's weight slot and copy a Conv2d's stride/padding. Members
// are reached through explicit template instantiation, where access checking does not apply
// ([temp.spec.general]/6): a standard, well-defined idiom. A public Module::named_children() and
// Conv2d::args() would make this block unnecessary.
template <class Tag, typename Tag::type Member>
struct Reach {
  friend typename Tag::type member_of(Tag) { return Member; }
};
struct ChildrenOf {
  using type = std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::*;
  friend type member_of(ChildrenOf);
};
struct ParamsOf {
  using type = std::vector<std::pair<std::string, Tensor>> Module::*;
  friend type member_of(ParamsOf);
};
struct ConvArgsOf {
  using type = ops::Conv2dArgs Conv2d::*;
  friend type member_of(ConvArgsOf);
};
template struct Reach<ChildrenOf, &Module::children_>;
template struct Reach<ParamsOf, &Module::params_>;
template struct Reach<ConvArgsOf, &Conv2d::args_>;

const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children_of(const Module& m) {
  return m.*member_of(ChildrenOf{});
}

// Module::replace_module is protected; a pointer to it taken through a derived class's public
// using-declaration calls it on any module.
struct Opener : Module {
  using Module::replace_module;
};
void replace_child(Module& parent, const std::string& name, std::shared_ptr<Module> m) {
  (parent.*(&Opener::replace_module))(name, std::move(m));
}

// Points `layer`'s own parameter slot `name` at `value` (not a copy: the layer's forward reads it).
void set_slot(Module& layer, const std::string& name, const Tensor& value) {
  for (auto& [n, t] : layer.*member_of(ParamsOf{}))
    if (n == name) {
      t = value;
      return;
    }
  throw std::logic_error("lora: layer has no parameter slot '" + name + "'");
}

struct Site {
  std::string path;      // dotted module path, e.g. "h.3.attn.c_attn"
  Module* parent;        // the module holding it as a child
  std::string name;      // its child name in parent ("c_attn", or "h.3" at the top)
  std::shared_ptr<Module> module;
};

void walk(const Module& m, const std::string& prefix, std::vector<Site>& out) {
  for (const auto& [n, child] : children_of(m)) {
    const std::string path = prefix + n;
    out.push_back({path, const_cast<Module*>(&m), n, child});
    if (!dynamic_cast<const LoraWrapper*>(child.get())) walk(*child, path + ".", out);
  }
}

std::vector<Site> sites_of(const Module& model) {
  std::vector<Site> out;
  walk(model, "", out);
  return out;
}

bool adaptable(const Module* m) {
  return dynamic_cast<const Linear*>(m) || dynamic_cast<const Conv1D*>(m) || dynamic_cast<const Conv2d*>(m);
}

// ---- patterns -----------------------------------------------------------------------------------
bool is_glob(const std::string& p) { return p.find_first_of("\\[](){}+^$|") == std::string::npos; }

bool glob_match(const char* p, const char* s) {
  const char *star = nullptr, *resume = nullptr;
  while (*s) {
    if (*p == '?' || *p == *s) {
      ++p, ++s;
    } else if (*p == '*') {
      star = p++;
      resume = s;
    } else if (star) {
      p = star + 1;
      s = ++resume;
    } else {
      return false;
    }
  }
  while (*p == '*') ++p;
  return *p == '\0';
}

struct Pattern {
  std::string text;
  bool glob;
  std::regex re;
  explicit Pattern(const std::string& p) : text(p), glob(is_glob(p)) {
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
    return glob ? glob_match(text.c_str(), path.c_str()) : std::regex_match(path, re);
  }
};

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest(const std::string& pattern, const std::vector<std::string>& names, size_t n = 5) {
  std::string bare;  // the pattern without its wildcard/escape characters
  for (char c : pattern)
    if (std::string_view("*?\\^$").find(c) == std::string_view::npos) bare += c;
  std::vector<std::pair<size_t, std::string>> scored;
  for (const std::string& name : names) scored.emplace_back(edit_distance(bare, name), name);
  std::sort(scored.begin(), scored.end());
  std::string out;
  for (size_t i = 0; i < scored.size() && i < n; ++i) out += (i ? ", " : "") + scored[i].second;
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
  std::shared_ptr<LoraWrapper> wrapper;
};

void check_config(const LoraConfig& c, const std::string& where) {
  if (c.rank < 1) throw std::invalid_argument(where + ": lora rank must be >= 1, got " + std::to_string(c.rank));
  if (!std::isfinite(c.alpha)) throw std::invalid_argument(where + ": lora alpha must be finite");
  if (!(c.dropout >= 0.0 && c.dropout < 1.0))
    throw std::invalid_argument(where + ": lora dropout must be in [0, 1), got " + std::to_string(c.dropout));
}

// Builds (without touching the model) one wrapper per adaptable module that `wanted` accepts.
template <class Wanted>
std::vector<Planned> plan(const Module& model, const LoraConfig& c, Wanted wanted) {
  std::vector<Planned> out;
  for (const Site& s : sites_of(model))
    if (adaptable(s.module.get()) && wanted(s.path))
      out.push_back({s, std::make_shared<LoraWrapper>(s.module, c.rank, c.alpha, c.dropout, path_seed(c.seed, s.path))});
  return out;
}

void refuse_if_injected(const Module& model, const std::string& where) {
  const auto existing = lora_modules(model);
  if (!existing.empty())
    throw std::invalid_argument(where + ": the model already has LoRA adapters (" + existing[0].first +
                                ", ...); merge_lora first or start from a fresh model");
}

// Puts the wrappers into the tree and freezes everything but lora_A/lora_B.
void install(Module& model, const std::vector<Planned>& planned) {
  for (const Planned& p : planned) {
    p.wrapper->train(p.site.module->training());
    replace_child(*p.site.parent, p.site.name, p.wrapper);
  }
  for (auto& [name, t] : model.named_parameters()) t.requires_grad_(false);
  for (const Planned& p : planned) {
    Tensor a = p.wrapper->lora_A(), b = p.wrapper->lora_B();
    a.requires_grad_(true);
    b.requires_grad_(true);
    p.wrapper->sync();
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

// ---- LoraWrapper ----------------------------------------------------------------------------------

LoraWrapper::LoraWrapper(std::shared_ptr<Module> base, int64_t rank, double alpha, double dropout, uint64_t seed)
    : base_(std::move(base)), rank_(rank), alpha_(alpha), dropout_(dropout) {
  if (!base_) throw std::invalid_argument("LoraWrapper: no base module");
  if (rank < 1) throw std::invalid_argument("LoraWrapper: rank must be >= 1, got " + std::to_string(rank));
  Tensor weight, bias;
  for (const auto& [n, t] : base_->named_parameters()) {
    if (n == "weight") weight = t;
    if (n == "bias") bias = t;
  }
  if (!weight.defined()) throw std::invalid_argument("LoraWrapper: base module has no 'weight'");
  int64_t in = 0, out = 0;
  Shape a_shape, b_shape;
  if (dynamic_cast<const Linear*>(base_.get())) {
    kind_ = Kind::Linear;
    out = weight.size(0), in = weight.size(1);
    a_shape = {rank, in}, b_shape = {out, rank};
  } else if (dynamic_cast<const Conv1D*>(base_.get())) {
    kind_ = Kind::Conv1D;
    in = weight.size(0), out = weight.size(1);
    a_shape = {rank, in}, b_shape = {out, rank};
  } else if (const auto* conv = dynamic_cast<const Conv2d*>(base_.get())) {
    kind_ = Kind::Conv2d;
    conv_args_ = conv->*member_of(ConvArgsOf{});
    if (conv_args_.groups != 1)
      throw std::invalid_argument("LoraWrapper: grouped Conv2d (groups = " + std::to_string(conv_args_.groups) +
                                  ", weight " + shape_str(weight.shape()) + ") is not supported by LoRA");
    out = weight.size(0), in = weight.size(1);
    a_shape = {rank, in, weight.size(2), weight.size(3)}, b_shape = {out, rank, 1, 1};
  } else {
    throw std::invalid_argument("LoraWrapper: base module is not a Linear, Conv1D or Conv2d");
  }
  has_bias_ = bias.defined();
  // PEFT's init: A ~ kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)); B = 0.
  int64_t fan_in = 1;
  for (size_t d = 1; d < a_shape.size(); ++d) fan_in *= a_shape[d];
  const double bound = 1.0 / std::sqrt(double(fan_in));
  Tensor a = Tensor::rand(a_shape, seed, -bound, bound, DType::F32);
  Tensor b = Tensor::zeros(b_shape, DType::F32);
  if (!weight.device().is_cpu()) a = a.to(weight.device()), b = b.to(weight.device());
  // The base's own tensors under the checkpoint's names (same objects: loading into
  // "<path>.weight" writes the base layer's weight).
  const bool frozen_w = !weight.requires_grad(), frozen_b = has_bias_ && !bias.requires_grad();
  register_parameter("weight", weight);
  if (has_bias_) register_parameter("bias", bias);
  if (frozen_w) weight.requires_grad_(false);  // register_parameter turns requires_grad on
  if (frozen_b) bias.requires_grad_(false);
  a_ = register_module("lora_A", std::make_shared<LoraFactor>(a));
  b_ = register_module("lora_B", std::make_shared<LoraFactor>(b));
}

Tensor LoraWrapper::base_forward(const Tensor& x, const Tensor& weight) const {
  const Tensor bias = has_bias_ ? param("bias") : Tensor();
  switch (kind_) {
    case Kind::Linear: return ops::linear(x, weight, bias);
    case Kind::Conv1D: return ops::add(ops::matmul(x, weight), bias);
    case Kind::Conv2d: return ops::conv2d(x, weight, bias, conv_args_);
  }
  throw std::logic_error("LoraWrapper: bad kind");
}

Tensor LoraWrapper::lora_delta(const Tensor& x) const {
  const Tensor h = dropout_ > 0 ? ops::dropout(x, dropout_, training()) : x;
  Tensor low;
  if (kind_ == Kind::Conv2d) {
    ops::Conv2dArgs a_args = conv_args_;
    a_args.groups = 1;
    low = ops::conv2d(ops::conv2d(h, lora_A(), Tensor(), a_args), lora_B(), Tensor(), ops::Conv2dArgs{});
  } else {
    low = ops::linear(ops::linear(h, lora_A()), lora_B());  // h A^T B^T (Conv1D: same, [.., out])
  }
  return ops::mul(low, scaling());
}

Tensor LoraWrapper::forward(const Tensor& x) const { return ops::add(base_forward(x, base_weight()), lora_delta(x)); }

Tensor LoraWrapper::delta_weight() const {
  const Tensor& a = lora_A();
  const Tensor& b = lora_B();
  const Tensor ba = ops::mul(ops::matmul(b.reshape({b.size(0), rank_}), a.reshape({rank_, -1})), scaling());
  switch (kind_) {
    case Kind::Linear: return ba;                      // [out, in]
    case Kind::Conv1D: return ba.transpose(0, 1);      // [in, out]
    case Kind::Conv2d: return ba.reshape(base_weight().shape());  // [out, in, kh, kw]
  }
  throw std::logic_error("LoraWrapper: bad kind");
}

void LoraWrapper::sync() {
  // Always recorded (even when called under a NoGradGuard), so that a training forward after a
  // sync done in evaluation code still reaches A and B.
  const bool previous = grad_mode_enabled();
  set_grad_mode(true);
  Tensor w_eff;
  try {
    w_eff = ops::add(base_weight(), delta_weight());
  } catch (...) {
    set_grad_mode(previous);
    throw;
  }
  set_grad_mode(previous);
  set_slot(*base_, "weight", w_eff);
}

void LoraWrapper::restore_base() { set_slot(*base_, "weight", base_weight()); }

void LoraWrapper::merge() {
  {
    NoGradGuard no_grad;
    Tensor w = base_weight();
    const Tensor d = delta_weight().contiguous().to(w.dtype());
    ops::add_(w, d);
  }
  restore_base();
}

// ---- model-level API ----------------------------------------------------------------------------------

std::vector<std::pair<std::string, std::shared_ptr<LoraWrapper>>> lora_modules(const Module& model) {
  std::vector<std::pair<std::string, std::shared_ptr<LoraWrapper>>> out;
  for (const Site& s : sites_of(model))
    if (auto w = std::dynamic_pointer_cast<LoraWrapper>(s.module)) out.emplace_back(s.path, w);
  return out;
}

int64_t inject_lora(Module& model, const LoraConfig& config) {
  const std::string where = "inject_lora";
  check_config(config, where);
  if (config.dropout > 0)
    throw std::invalid_argument(
        "inject_lora: lora dropout " + std::to_string(config.dropout) +
        " is not supported: the models call their layers directly, so LoRA runs as an effective weight "
        "(W + s B A), which cannot drop the adapter's input; use dropout 0 (see engine/nn/lora.h)");
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
  const auto planned = plan(model, config, [&](const std::string& path) {
    return std::any_of(patterns.begin(), patterns.end(), [&](const Pattern& p) { return p.matches(path); });
  });
  install(model, planned);
  return static_cast<int64_t>(planned.size());
}

void sync_lora(Module& model) {
  for (auto& [path, w] : lora_modules(model)) w->sync();
}

void merge_lora(Module& model) {
  for (const Site& s : sites_of(model))
    if (auto w = std::dynamic_pointer_cast<LoraWrapper>(s.module)) {
      w->merge();
      replace_child(*s.parent, s.name, w->base());
    }
}

void save_lora_adapters(const Module& model, const std::string& dir, const LoraConfig& config) {
  const auto wrappers = lora_modules(model);
  if (wrappers.empty()) throw std::invalid_argument("save_lora_adapters: the model has no LoRA adapters");
  io::StateDict sd;
  bool fan_in_fan_out = false;
  for (const auto& [path, w] : wrappers) {
    sd[kPrefix + path + ".lora_A.weight"] = w->lora_A().detach().to(Device::cpu());
    sd[kPrefix + path + ".lora_B.weight"] = w->lora_B().detach().to(Device::cpu());
    fan_in_fan_out = fan_in_fan_out || w->kind() == LoraWrapper::Kind::Conv1D;
  }
  const int64_t rank = wrappers[0].second->rank();
  fs::create_directories(dir);
  io::save_safetensors((fs::path(dir) / kWeightsFile).string(), sd, {{"format", "pt"}});
  nlohmann::json j = {
      {"peft_type", "LORA"},
      {"r", rank},
      {"lora_alpha", wrappers[0].second->scaling() * double(rank)},
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

  LoraConfig inject = config;
  inject.dropout = 0.0;  // not applicable to effective-weight LoRA (see lora.h); kept in the result
  const auto planned = plan(model, inject, [&](const std::string& path) { return keys_of.count(path) > 0; });
  {
    NoGradGuard no_grad;
    for (const Planned& p : planned) {
      const auto& [a_key, b_key] = keys_of.at(p.site.path);
      for (const auto& [key, target] : {std::pair{a_key, p.wrapper->lora_A()}, std::pair{b_key, p.wrapper->lora_B()}}) {
        const Tensor& src = sd.at(key);
        if (src.shape() != target.shape())
          throw std::runtime_error(weights_path + ": tensor '" + key + "' has shape " + shape_str(src.shape()) +
                                   ", expected " + shape_str(target.shape()) + " (rank " +
                                   std::to_string(config.rank) + " from " + config_path + ", layer '" +
                                   p.site.path + "' weight " + shape_str(p.wrapper->base_weight().shape()) + ")");
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
