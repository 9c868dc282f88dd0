// Helpers shared by the model parity tests (gpt2_parity_test.cpp, bert_parity_test.cpp,
// resnet_parity_test.cpp): comparing tensors with a reference, JSON/text files, fixture folders,
// temporary folders and copies of fixtures, the hone binary next to the test program, and the
// "loading this must fail with a message naming ..." check.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <unistd.h>

#include "engine/core/tensor.h"
#include "engine/io/checkpoint.h"
#include "engine/optim/adamw.h"
#include "engine/train/trainer.h"

namespace hone::test {

namespace fs = std::filesystem;

// ---- comparing with a reference -----------------------------------------------------------------

struct Diff {
  double max_abs = 0, max_ref = 0;  // max |actual - expected|, max |expected|
  double rel() const { return max_abs / std::max(max_ref, 1e-30); }
};

// Shapes must agree; returns the largest error and the largest expected magnitude.
inline Diff compare(const Tensor& actual, const Tensor& expected, const std::string& what) {
  Diff d;
  EXPECT_EQ(shape_str(actual.shape()), shape_str(expected.shape())) << what;
  if (actual.shape() != expected.shape()) {
    d.max_abs = INFINITY;
    return d;
  }
  const std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) {
    d.max_abs = std::max(d.max_abs, std::isfinite(a[i]) ? std::abs(a[i] - e[i]) : INFINITY);
    d.max_ref = std::max(d.max_ref, std::abs(e[i]));
  }
  return d;
}

// ---- gradients -----------------------------------------------------------------------------------

// The gradients of `named` (a model's named_parameters()) keyed by the checkpoint names: `key_of`
// maps our parameter names to them; a parameter with no checkpoint name is keyed "(hone) name" so
// that a name mismatch shows. `skip` leaves out parameters the reference has no gradient for.
inline io::StateDict grads_keyed_as(const std::vector<std::pair<std::string, Tensor>>& named,
                                    const std::map<std::string, std::string>& key_of,
                                    const std::function<bool(const std::string&)>& skip = {}) {
  io::StateDict actual;
  for (auto& [name, p] : named) {
    if (skip && skip(name)) continue;
    auto it = key_of.find(name);
    actual[it == key_of.end() ? "(hone) " + name : it->second] = p.grad();
  }
  return actual;
}

// Both state dicts hold the same names.
inline void expect_same_names(const io::StateDict& actual, const io::StateDict& expected, const std::string& tag) {
  std::set<std::string> ek, ak;
  for (auto& [k, t] : expected) ek.insert(k);
  for (auto& [k, t] : actual) ak.insert(k);
  EXPECT_EQ(ak, ek) << tag << ": gradient names differ from the checkpoint's parameters";
}

// ---- the AdamW loss curve of a fixture's curve.json -----------------------------------------------

// AdamW over `named` (a model's named_parameters()) as the reference ran it: hyper-parameters from
// curve.json, weight decay by default_weight_decay, which must pick the parameters the reference
// decayed (curve["decayed"], its names mapped to ours by `our_name`).
inline AdamW adamw_as_in_curve(const std::vector<std::pair<std::string, Tensor>>& named, const nlohmann::json& curve,
                               const std::function<std::string(const std::string&)>& our_name) {
  std::vector<Tensor> params;
  std::vector<bool> decay;
  std::set<std::string> decayed;
  for (auto& [name, p] : named) {
    params.push_back(p);
    decay.push_back(default_weight_decay(name, p));
    if (decay.back()) decayed.insert(name);
  }
  std::set<std::string> ref_decayed;
  for (const auto& k : curve["decayed"]) ref_decayed.insert(our_name(k.get<std::string>()));
  EXPECT_EQ(decayed, ref_decayed);
  AdamWConfig cfg;
  cfg.lr = curve["lr"].get<double>();
  cfg.beta1 = curve["betas"][0].get<double>();
  cfg.beta2 = curve["betas"][1].get<double>();
  cfg.eps = curve["eps"].get<double>();
  cfg.weight_decay = curve["weight_decay"].get<double>();
  return AdamW(params, decay, cfg);
}

// The loss before each of expected.size() - 1 AdamW steps and after the last must match
// `expected` within `tol`; returns the worst step's error.
inline double run_adamw_curve(AdamW& opt, const std::function<Tensor()>& loss_fn, const std::vector<double>& expected,
                              double tol) {
  double worst = 0;
  for (size_t step = 0; step < expected.size(); ++step) {
    opt.zero_grad();
    const Tensor loss = loss_fn();
    const double l = loss.item();
    EXPECT_NEAR(l, expected[step], tol) << "loss after " << step << " AdamW steps";
    worst = std::max(worst, std::abs(l - expected[step]));
    if (step + 1 == expected.size()) break;
    loss.backward();
    opt.step();
  }
  return worst;
}

// ---- files ----------------------------------------------------------------------------------------

// Throws "<p>: cannot open" (followed by " (<hint>)" when a hint is given) if `p` cannot be read.
inline nlohmann::json read_json(const fs::path& p, const std::string& hint = {}) {
  std::ifstream f(p);
  if (!f) throw std::runtime_error(p.string() + ": cannot open" + (hint.empty() ? "" : " (" + hint + ")"));
  return nlohmann::json::parse(f);
}

inline void write_text(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
}

// ---- fixtures -------------------------------------------------------------------------------------

// root/name, which must be a folder (or, when `marker` is given, hold the file `marker`).
inline fs::path fixture_dir(const fs::path& root, const std::string& name, const std::string& marker = {}) {
  const fs::path p = root / name;
  if (marker.empty() ? !fs::is_directory(p) : !fs::exists(p / marker))
    throw std::runtime_error(p.string() + ": fixture missing; run make_fixtures.py");
  return p;
}

// The sub-folders of `root` that hold the file `marker`, sorted; none if `root` is absent.
inline std::vector<fs::path> fixture_dirs_with(const fs::path& root, const std::string& marker) {
  std::vector<fs::path> dirs;
  if (fs::is_directory(root))
    for (const auto& e : fs::directory_iterator(root))
      if (e.is_directory() && fs::exists(e.path() / marker)) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

// ---- temporary folders ----------------------------------------------------------------------------

// <tmp>/<prefix><pid>_<tag>, created empty, removed with everything in it on destruction.
struct TempDir {
  fs::path path;
  TempDir(const std::string& prefix, const std::string& tag) {
    path = fs::temp_directory_path() / (prefix + std::to_string(::getpid()) + "_" + tag);
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// A temporary copy of the files of the folder `source` (a fixture's model files).
struct FolderCopy : TempDir {
  FolderCopy(const fs::path& source, const std::string& prefix, const std::string& tag) : TempDir(prefix, tag) {
    for (const auto& e : fs::directory_iterator(source)) fs::copy_file(e.path(), path / e.path().filename());
  }
  void edit_config(const std::function<void(nlohmann::json&)>& f) const {
    nlohmann::json j = read_json(path / "config.json");
    f(j);
    write_text(path / "config.json", j.dump(2));
  }
};

// ---- the hone command line tool -------------------------------------------------------------------

// <build>/tests/hone_model_tests -> <build>/tools/hone
inline fs::path hone_binary() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return self.parent_path().parent_path() / "tools" / "hone";
}

// A path in single quotes, for a shell command line.
inline std::string quoted(const fs::path& p) {
  std::string q = "'";
  q += p.string();
  q += "'";
  return q;
}

// The "loss" metadata that `hone grads` wrote into `grads` is `expected` within `tol` (a fatal
// failure when it is absent: wrap the call in ASSERT_NO_FATAL_FAILURE).
inline void expect_loss_metadata(const fs::path& grads, double expected, double tol) {
  const auto meta = io::safetensors_metadata(grads.string());
  ASSERT_TRUE(meta.count("loss"));
  EXPECT_NEAR(std::stod(meta.at("loss")), expected, tol);
}

// Skips the calling test when the hone binary is not built; otherwise `hone` holds its path.
#define HONE_PARITY_REQUIRE_HONE_BINARY(hone)                                                        \
  const ::std::filesystem::path hone = ::hone::test::hone_binary();                                  \
  if (hone.empty() || !::std::filesystem::exists(hone))                                              \
  GTEST_SKIP() << "the hone binary is not at " << hone << " (build the 'hone' target in this build dir)"

// ---- refused loads ----------------------------------------------------------------------------------

// `load` must throw std::runtime_error whose message contains every one of `needles`; the message
// is printed as "<label>: <message>" and returned. If it throws nothing, the failure reads
// "<subject><accepted>" (subject streamed as a path, i.e. quoted).
inline std::string expect_refusal(const std::function<void()>& load, const std::vector<std::string>& needles,
                                  const char* label, const fs::path& subject, const std::string& accepted) {
  try {
    load();
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
    std::printf("%s: %s\n", label, msg.c_str());
    return msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected std::runtime_error, got another exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << subject << accepted;
  return {};
}

}  // namespace hone::test
