#include "tools/sweep.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <stdexcept>

namespace fs = std::filesystem;

namespace hone::cli::sweep {

namespace {

const std::vector<std::string> kSweepKeys = {"recipe", "out_dir", "method", "trials", "seed", "metric", "mode",
                                             "overrides", "successive_halving", "space", "max_trials_this_run",
                                             "interrupt_after_steps", "dry_run"};

bool parse_int(const std::string& text, int64_t& out) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno) return false;
  out = v;
  return true;
}

bool parse_double(const std::string& text, double& out) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') return false;
  out = v;
  return true;
}

int64_t to_int(const std::string& where, const std::string& key, const std::string& text) {
  int64_t v;
  if (!parse_int(text, v)) throw std::invalid_argument(where + ": '" + key + "' expects an integer, got '" + text + "'");
  return v;
}

std::string scalar(const YAML::Node& n, const std::string& where, const std::string& key) {
  if (!n.IsScalar()) throw std::invalid_argument(where + ": '" + key + "' must be a single value");
  return n.Scalar();
}

std::string line_of(const std::string& source, const YAML::Node& n) {
  return source + " (line " + std::to_string(n.Mark().line + 1) + ")";
}

bool is_range(const YAML::Node& n) {
  if (!n.IsMap() || n.size() == 0) return false;
  for (const auto& kv : n) {
    const std::string k = kv.first.as<std::string>();
    if (k != "min" && k != "max" && k != "log_min" && k != "log_max") return false;
  }
  return true;
}

void read_space(const YAML::Node& node, const std::string& prefix, const std::string& source, Spec& s) {
  for (const auto& kv : node) {
    const std::string key = prefix + kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    const std::string where = line_of(source, v);
    Dimension d;
    d.key = key;
    if (v.IsSequence()) {
      if (v.size() == 0) throw std::invalid_argument(where + ": space key '" + key + "' has an empty list of values");
      for (const auto& c : v) {
        if (!c.IsScalar())
          throw std::invalid_argument(where + ": space key '" + key + "': every value must be a single value");
        d.choices.push_back(c.Scalar());
      }
    } else if (is_range(v)) {
      const bool lin = v["min"] || v["max"], log = v["log_min"] || v["log_max"];
      if (lin && log)
        throw std::invalid_argument(where + ": space key '" + key + "': give {min, max} or {log_min, log_max}, not both");
      const std::string lo_key = lin ? "min" : "log_min", hi_key = lin ? "max" : "log_max";
      if (!v[lo_key] || !v[hi_key])
        throw std::invalid_argument(where + ": space key '" + key + "' needs both " + lo_key + " and " + hi_key);
      const std::string lo = scalar(v[lo_key], where, key + "." + lo_key), hi = scalar(v[hi_key], where, key + "." + hi_key);
      if (!parse_double(lo, d.lo) || !parse_double(hi, d.hi) || !std::isfinite(d.lo) || !std::isfinite(d.hi))
        throw std::invalid_argument(where + ": space key '" + key + "': " + lo_key + " and " + hi_key +
                                    " must be numbers, got '" + lo + "' and '" + hi + "'");
      if (d.lo > d.hi)
        throw std::invalid_argument(where + ": space key '" + key + "': " + lo_key + " (" + lo + ") is greater than " +
                                    hi_key + " (" + hi + ")");
      if (log && !(d.lo > 0))
        throw std::invalid_argument(where + ": space key '" + key + "': log_min must be positive for a log-uniform range");
      int64_t i;
      d.integer = parse_int(lo, i) && parse_int(hi, i);
      d.kind = lin ? Dimension::Kind::Uniform : Dimension::Kind::LogUniform;
    } else if (v.IsMap() && v.size() > 0) {
      read_space(v, key + ".", source, s);  // nested keys: optimizer: {lr: [...]}
      continue;
    } else {
      throw std::invalid_argument(where + ": space key '" + key +
                                  "' must be a list of values, {min, max} or {log_min, log_max}");
    }
    for (const Dimension& e : s.space)
      if (e.key == key) throw std::invalid_argument(where + ": space key '" + key + "' appears twice");
    s.space.push_back(d);
  }
}

// Applies one sweep key (from the file or the command line); false when `key` is not a sweep key.
bool set_key(Spec& s, const std::string& key, const std::string& value, const std::string& where) {
  if (key == "recipe") s.recipe = value;
  else if (key == "out_dir") s.out_dir = value;
  else if (key == "method") s.method = value;
  else if (key == "trials") s.trials = to_int(where, key, value);
  else if (key == "seed") s.seed = to_int(where, key, value);
  else if (key == "metric") s.metric = value;
  else if (key == "mode") s.mode = value;
  else if (key == "successive_halving.rungs") s.rungs = to_int(where, key, value), s.halving = true;
  else if (key == "successive_halving.eta") s.eta = to_int(where, key, value), s.halving = true;
  else if (key == "max_trials_this_run") s.max_trials_this_run = to_int(where, key, value);
  else if (key == "interrupt_after_steps") s.interrupt_after_steps = to_int(where, key, value);
  else if (key == "dry_run") {
    if (value != "true" && value != "false") throw std::invalid_argument(where + ": dry_run expects true or false");
    s.dry_run = value == "true";
  } else return false;
  return true;
}

std::string format_number(double v, bool integer) {
  if (integer) return std::to_string(int64_t(std::llround(v)));
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

Spec load_spec(const std::string& path, const std::vector<std::string>& cli) {
  Spec s;
  s.source = path;
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw std::invalid_argument(path + ": cannot open the sweep file");
  } catch (const YAML::Exception& e) {
    throw std::invalid_argument(path + ": not valid YAML: " + e.what());
  }
  if (!root.IsMap()) throw std::invalid_argument(path + ": the sweep file must be a YAML mapping (recipe, space, ...)");
  bool has_space = false;
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    const std::string where = line_of(path, v);
    if (key == "space") {
      has_space = true;
      if (v.IsNull()) continue;
      if (!v.IsMap()) throw std::invalid_argument(where + ": 'space' must map recipe keys to values");
      read_space(v, "", path, s);
    } else if (key == "overrides") {
      if (v.IsNull()) continue;
      if (v.IsSequence()) {
        for (const auto& o : v) {
          const std::string text = scalar(o, where, "overrides");
          if (text.find('=') == std::string::npos || text[0] == '=')
            throw std::invalid_argument(where + ": override '" + text + "' is not of the form key=value");
          s.overrides.push_back(text);
        }
      } else if (v.IsMap()) {
        for (const auto& o : v) s.overrides.push_back(o.first.as<std::string>() + "=" + scalar(o.second, where, "overrides"));
      } else {
        throw std::invalid_argument(where + ": 'overrides' must be a list of key=value (or a mapping)");
      }
    } else if (key == "successive_halving") {
      if (v.IsNull()) continue;
      if (!v.IsMap()) throw std::invalid_argument(where + ": 'successive_halving' must be a mapping {rungs, eta}");
      s.halving = true;
      for (const auto& h : v) {
        const std::string k = "successive_halving." + h.first.as<std::string>();
        if (!set_key(s, k, scalar(h.second, where, k), where) || (k != "successive_halving.rungs" && k != "successive_halving.eta"))
          throw std::invalid_argument(where + ": unknown key '" + k + "' (successive_halving takes rungs and eta)");
      }
    } else {
      if (!set_key(s, key, scalar(v, where, key), where)) {
        std::string known;
        for (const std::string& k : kSweepKeys) known += (known.empty() ? "" : ", ") + k;
        throw std::invalid_argument(where + ": unknown sweep key '" + key + "' (known: " + known + ")");
      }
    }
  }
  for (const std::string& o : cli) {
    const size_t eq = o.find('=');
    if (!set_key(s, o.substr(0, eq), o.substr(eq + 1), "command-line override '" + o + "'")) s.overrides.push_back(o);
  }

  // Checks, all before anything runs.
  if (s.recipe.empty()) throw std::invalid_argument(path + ": 'recipe' (the base recipe file) is required");
  if (s.out_dir.empty()) throw std::invalid_argument(path + ": 'out_dir' must not be empty");
  if (!has_space || s.space.empty())
    throw std::invalid_argument(path + ": the sweep space is empty: give 'space' with at least one recipe key and its values");
  if (s.method != "grid" && s.method != "random")
    throw std::invalid_argument(path + ": unknown method '" + s.method + "' (grid or random)");
  if (s.method == "random" && s.trials < 1)
    throw std::invalid_argument(path + ": random search needs trials >= 1, got " + std::to_string(s.trials));
  if (s.method == "grid" && s.trials != 0)
    throw std::invalid_argument(path + ": 'trials' applies to method: random (a grid runs every combination)");
  if (s.method == "grid")
    for (const Dimension& d : s.space)
      if (d.kind != Dimension::Kind::Choice)
        throw std::invalid_argument(path + ": space key '" + d.key +
                                    "' is a range; grid search needs a list of values (or use method: random)");
  if (s.metric.empty()) throw std::invalid_argument(path + ": 'metric' (the evaluation metric to rank trials by) is required");
  if (s.mode.empty()) s.mode = s.metric == "loss" || s.metric == "ppl" ? "min" : "max";
  if (s.mode != "min" && s.mode != "max")
    throw std::invalid_argument(path + ": mode must be min or max, got '" + s.mode + "'");
  if (s.halving && s.rungs < 1)
    throw std::invalid_argument(path + ": successive_halving.rungs must be >= 1, got " + std::to_string(s.rungs));
  if (s.halving && s.eta < 2)
    throw std::invalid_argument(path + ": successive_halving.eta must be >= 2, got " + std::to_string(s.eta));
  if (s.max_trials_this_run < 0 || s.interrupt_after_steps < 0)
    throw std::invalid_argument(path + ": max_trials_this_run and interrupt_after_steps must be >= 0");
  for (const std::string& o : s.overrides) {
    const std::string k = o.substr(0, o.find('='));
    if (k == "out_dir" || k == "resume" || k == "stop_after")
      throw std::invalid_argument(path + ": override '" + o + "': the sweep sets " + k + " for each trial");
  }
  for (const Dimension& d : s.space) {
    if (d.key == "out_dir" || d.key == "resume" || d.key == "stop_after" || d.key == "task")
      throw std::invalid_argument(path + ": space key '" + d.key + "' cannot be swept (the sweep sets it, or it is the task)");
    if (s.halving && (d.key == "steps" || d.key == "epochs" || d.key == "eval_every" || d.key == "save_every"))
      throw std::invalid_argument(path + ": space key '" + d.key +
                                  "' cannot be swept with successive halving (the rung budgets come from the step count)");
  }
  return s;
}

std::vector<Values> make_trials(const Spec& spec) {
  std::vector<Values> out;
  if (spec.method == "grid") {
    size_t total = 1;
    for (const Dimension& d : spec.space) {
      total *= d.choices.size();
      if (total > 100000) throw std::invalid_argument(spec.source + ": the grid has more than 100000 combinations");
    }
    for (size_t i = 0; i < total; ++i) {
      Values v(spec.space.size());
      size_t rest = i;
      for (size_t k = spec.space.size(); k-- > 0;) {
        const Dimension& d = spec.space[k];
        v[k] = {d.key, d.choices[rest % d.choices.size()]};
        rest /= d.choices.size();
      }
      out.push_back(v);
    }
    return out;
  }
  // Random: mt19937_64's output is fixed by the standard; the mapping to [0, 1) is ours, so the
  // same seed gives the same trials on every platform.
  std::mt19937_64 rng(uint64_t(spec.seed));
  auto uniform = [&] { return double(rng() >> 11) * 0x1.0p-53; };
  for (int64_t t = 0; t < spec.trials; ++t) {
    Values v;
    for (const Dimension& d : spec.space) {
      const double u = uniform();
      std::string value;
      switch (d.kind) {
        case Dimension::Kind::Choice:
          value = d.choices[std::min(d.choices.size() - 1, size_t(u * double(d.choices.size())))];
          break;
        case Dimension::Kind::Uniform:
          value = d.integer ? std::to_string(int64_t(d.lo) + std::min(int64_t(d.hi - d.lo), int64_t(u * (d.hi - d.lo + 1))))
                            : format_number(d.lo + u * (d.hi - d.lo), false);
          break;
        case Dimension::Kind::LogUniform: {
          const double x = std::exp(std::log(d.lo) + u * (std::log(d.hi) - std::log(d.lo)));
          value = format_number(d.integer ? std::clamp(std::round(x), d.lo, d.hi) : x, d.integer);
          break;
        }
      }
      v.emplace_back(d.key, value);
    }
    out.push_back(v);
  }
  return out;
}

std::vector<std::string> as_overrides(const Values& v) {
  std::vector<std::string> out;
  for (const auto& [k, x] : v) out.push_back(k + "=" + x);
  return out;
}

std::vector<int64_t> rung_budgets(int64_t total_steps, int64_t rungs, int64_t eta) {
  int64_t first = total_steps;
  for (int64_t i = 1; i < rungs; ++i) first /= eta;
  if (first < 1)
    throw std::invalid_argument("successive halving: " + std::to_string(total_steps) + " steps are too few for " +
                                std::to_string(rungs) + " rungs with eta " + std::to_string(eta) +
                                " (the first rung would have no steps)");
  std::vector<int64_t> b;
  int64_t x = first;
  for (int64_t i = 0; i + 1 < rungs; ++i, x *= eta) b.push_back(x);
  b.push_back(total_steps);
  return b;
}

std::string recipe_value(const std::string& recipe_path, const std::vector<std::string>& overrides,
                         const std::string& key) {
  std::string value;
  try {
    YAML::Node node = YAML::LoadFile(recipe_path);
    size_t start = 0;
    bool found = true;
    while (true) {
      const size_t dot = key.find('.', start);
      const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (!node.IsMap() || !node[part]) {
        found = false;
        break;
      }
      node = node[part];
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    if (found && node.IsScalar()) value = node.Scalar();
  } catch (const YAML::Exception&) {
    // The recipe's own load reports a bad file.
  }
  for (const std::string& o : overrides)
    if (o.rfind(key + "=", 0) == 0) value = o.substr(key.size() + 1);
  return value;
}

std::vector<std::string> task_metrics(const std::string& task) {
  if (task == "causal_lm") return {"loss", "ppl"};
  if (task == "sequence_classification" || task == "image_classification") return {"loss", "accuracy", "macro_f1"};
  return {};
}

RunMetrics read_run_metrics(const std::string& run_dir, const std::string& metric) {
  RunMetrics m;
  m.metric = std::numeric_limits<double>::quiet_NaN();
  std::ifstream f(fs::path(run_dir) / "metrics.jsonl");
  std::string line;
  while (std::getline(f, line)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception&) {
      continue;
    }
    if (!j.is_object()) continue;
    const int64_t step = j.value("step", int64_t(0));
    if (j.value("split", "") == "val") {
      if (j.contains(metric) && j[metric].is_number()) {
        m.metric = j[metric].get<double>();
        m.metric_step = step;
        m.has_metric = true;
      }
    } else if (!j.contains("split")) {
      m.train_steps = std::max(m.train_steps, step);
    }
  }
  return m;
}

int64_t latest_checkpoint_step(const std::string& run_dir) {
  std::ifstream f(fs::path(run_dir) / "checkpoints" / "latest");
  std::string name;
  if (!f || !std::getline(f, name) || name.rfind("step-", 0) != 0) return 0;
  int64_t step = 0;
  return parse_int(name.substr(5), step) ? step : 0;
}

bool better(double a, double b, const std::string& mode) {
  if (std::isnan(a)) return false;
  if (std::isnan(b)) return true;
  return mode == "min" ? a < b : a > b;
}

}  // namespace hone::cli::sweep
