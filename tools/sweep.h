// Hyperparameter search (`hone sweep SWEEP.yaml`): the sweep file, the trials it defines (grid or
// seeded random search), successive-halving budgets, the resumable sweep state and the ranked
// results. The command itself (running the trials through the fine-tuning tasks) is cmd_sweep.cpp.
//
//   recipe: recipes/minilm-sentiment-sample.yaml   # base recipe (path relative to the cwd)
//   out_dir: runs/sweep-minilm                     # trials in <out_dir>/trial-001, -002, ...
//   method: grid | random        trials: 8 (random only)        seed: 1 (random sampling)
//   metric: accuracy             mode: max | min                overrides: [epochs=2, ...]
//   successive_halving: {rungs: 3, eta: 2}
//   space:
//     optimizer.lr: [1.0e-5, 3.0e-5]                # a list: choices (grid: every combination)
//     optimizer.weight_decay: {min: 0.0, max: 0.1}  # random only: uniform (integers if both are)
//     schedule.warmup_steps: {log_min: 1, log_max: 100}   # random only: log-uniform
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hone::cli::sweep {

struct Dimension {
  enum class Kind { Choice, Uniform, LogUniform };
  std::string key;  // a recipe key, dotted
  Kind kind = Kind::Choice;
  std::vector<std::string> choices;  // as written in the sweep file
  double lo = 0, hi = 0;
  bool integer = false;  // a range whose bounds are both written as integers samples integers
};

struct Spec {
  std::string source;  // the sweep file
  std::string recipe, out_dir = "runs/sweep", method = "grid", metric, mode;
  int64_t trials = 0, seed = 1;
  std::vector<std::string> overrides;  // applied to every trial (the file's, then the command line's)
  bool halving = false;
  int64_t rungs = 1, eta = 2;
  std::vector<Dimension> space;
  // Hidden keys, for tests and for trying a sweep out (command line or file):
  int64_t max_trials_this_run = 0;    // stop after this many trial runs (a trial's work on one rung)
  int64_t interrupt_after_steps = 0;  // stop the first trial run after N steps and exit, as a kill would
  bool dry_run = false;               // validate, print the trials, write nothing
};

// One trial's values: (key, value) in the space's order.
using Values = std::vector<std::pair<std::string, std::string>>;

// Reads and checks the sweep file, then applies `cli` overrides: sweep keys (recipe, out_dir,
// method, trials, seed, metric, mode, successive_halving.rungs/.eta and the hidden ones) change the
// sweep; any other key=value is applied to every trial. Throws std::invalid_argument naming the
// file and the key for anything wrong.
Spec load_spec(const std::string& path, const std::vector<std::string>& cli);

// Every combination (grid; the last key varies fastest) or `trials` seeded samples (random).
std::vector<Values> make_trials(const Spec& spec);

// "key=value" overrides of a trial's values.
std::vector<std::string> as_overrides(const Values& v);

// Successive-halving step budgets per rung: total/eta^(rungs-1), x eta each rung, the last = total.
std::vector<int64_t> rung_budgets(int64_t total_steps, int64_t rungs, int64_t eta);

// The value of `key` a recipe run would see from the recipe file's top level (dotted keys go
// through nested maps) and then the overrides (the last wins); "" when neither gives it.
std::string recipe_value(const std::string& recipe_path, const std::vector<std::string>& overrides,
                         const std::string& key);

// The metrics a task's evaluation reports (empty for a task this file does not know).
std::vector<std::string> task_metrics(const std::string& task);

// From <run>/metrics.jsonl: the last evaluation's `metric` (NaN when none has it) and its step,
// and the last training step logged.
struct RunMetrics {
  double metric;
  int64_t metric_step = 0, train_steps = 0;
  bool has_metric = false;
};
RunMetrics read_run_metrics(const std::string& run_dir, const std::string& metric);

// Step of <run>/checkpoints/latest (0 when there is none).
int64_t latest_checkpoint_step(const std::string& run_dir);

// true when a is better than b under mode ("max"/"min"); NaN is worse than anything.
bool better(double a, double b, const std::string& mode);

}  // namespace hone::cli::sweep
