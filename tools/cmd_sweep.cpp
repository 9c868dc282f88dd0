// `hone sweep SWEEP.yaml [key=value ...]`: hyperparameter search over a base recipe (see sweep.h for
// the file). Every trial is a whole fine-tune run in this process (finetune_causal_lm /
// finetune_classification / finetune_image) with the trial's values as overrides and its own run
// folder <out_dir>/trial-NNN: the model is loaded afresh from the recipe's model, and the optimizer,
// schedule, early stopping and RNG (the recipe's seed unless `seed` is swept) start from scratch.
//
// Successive halving: every trial trains for the first rung's budget (stop_after), the trials are
// ranked on their last evaluation's metric, the best ceil(n/eta) continue from their checkpoint
// (resume=true) to the next budget, the others stop ("stopped early at rung r"). The sweep sets
// save_every (and eval_every, unless the recipe's already divides it) to the first rung's budget
// so that every rung ends with an evaluation and a checkpoint.
//
// Resumable: <out_dir>/sweep_state.json (written atomically before and after each trial run and
// at each rung's decision) holds each trial's values, status (pending, running, done, stopped,
// failed), rungs completed, steps and last metric. The same command (same key=value arguments)
// again skips finished trials, continues an interrupted one from its latest checkpoint (the
// recipe's save_every; with successive halving, each rung's end; without a checkpoint the trial
// starts over) and retries failed ones (those of a rung already decided stay failed). A state
// written by a different sweep (other recipe, overrides, values or budgets) is refused.
//
// Ranking (results.csv/.md, best first): trials with a metric, then those that got further (more
// rungs), then the last evaluation's metric. Exit status 1 when any trial failed.
//
// Hidden keys, for tests and for trying things out: max_trials_this_run=N stops after N trial runs
// (a trial's work on one rung); interrupt_after_steps=N stops the first trial run of this
// invocation after N steps and leaves it "running", as a kill would; dry_run=true (or --dry-run)
// checks everything and prints the trials without training or writing anything.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "engine/io/checkpoint.h"
#include "engine/train/plot.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/finetune_tasks.h"
#include "tools/recipe_common.h"
#include "tools/sweep.h"

namespace fs = std::filesystem;

namespace hone::cli {

namespace {

using namespace sweep;

// Validation runs each trial's recipe load with this device: every task checks the device right
// after loading its recipe, before it reads data or builds a model, so a trial whose keys and
// values load gets this error and nothing else happens. (steps=0 is the second fence: the step
// count is checked before anything is read as well.)
const char* kValidateDevice = "hone-sweep-validate-only";

int run_task(const std::string& task, const std::string& recipe, const std::vector<std::string>& overrides) {
  if (task == "causal_lm") return finetune_causal_lm(recipe, overrides);
  if (task == "sequence_classification") return finetune_classification(recipe, overrides);
  if (task == "image_classification") return finetune_image(recipe, overrides);
  throw std::invalid_argument(recipe + ": unknown task '" + task +
                              "' (causal_lm, sequence_classification, image_classification)");
}

struct Trial {
  int id = 0;
  std::string name, dir;
  Values values;
  std::string status = "pending";  // pending, running, done, stopped, failed
  int64_t rung = 0;                 // rungs completed
  int64_t steps = 0;
  double metric = std::numeric_limits<double>::quiet_NaN();
  bool has_metric = false;
  std::string note;
};

struct Sweep {
  Spec spec;
  std::vector<std::string> fixed;  // overrides of every trial
  std::vector<int64_t> budgets;    // successive halving: steps per rung; empty: one run to the end
  std::vector<Trial> trials;
  int64_t decided = 0;  // rungs whose promotions are made
  nlohmann::json setup;
  std::string state_path;
};

std::string values_text(const Values& v) {
  std::string s;
  for (const auto& [k, x] : v) s += (s.empty() ? "" : " ") + k + "=" + x;
  return s;
}

std::string fmt(double v) {
  if (std::isnan(v)) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

void save_state(const Sweep& sw) {
  nlohmann::json trials = nlohmann::json::array();
  for (const Trial& t : sw.trials) {
    nlohmann::json values = nlohmann::json::object();
    for (const auto& [k, x] : t.values) values[k] = x;
    trials.push_back({{"id", t.id},
                      {"dir", t.name},
                      {"values", values},
                      {"status", t.status},
                      {"rung", t.rung},
                      {"steps", t.steps},
                      {"metric", t.has_metric ? nlohmann::json(t.metric) : nlohmann::json(nullptr)},
                      {"note", t.note}});
  }
  nlohmann::json keys = nlohmann::json::array();
  for (const Dimension& d : sw.spec.space) keys.push_back(d.key);
  const nlohmann::json state = {{"setup", sw.setup},   {"metric", sw.spec.metric}, {"mode", sw.spec.mode},
                                {"keys", keys},         {"budgets", sw.budgets},    {"decided_rungs", sw.decided},
                                {"trials", trials}};
  const std::string text = state.dump(2) + "\n";
  io::write_file_atomic(sw.state_path, [&](std::FILE* f) { std::fputs(text.c_str(), f); });
}

void load_state(Sweep& sw) {
  std::ifstream f(sw.state_path);
  if (!f) return;
  nlohmann::json s;
  try {
    s = nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    throw std::runtime_error(sw.state_path + ": not valid JSON (" + e.what() + "); delete it to start the sweep afresh");
  }
  if (!s.is_object() || !s.contains("setup") || !s.contains("trials") || !s["trials"].is_array())
    throw std::runtime_error(sw.state_path + ": not a sweep state; delete it to start the sweep afresh");
  if (s["setup"] != sw.setup)
    throw std::invalid_argument(sw.state_path +
                                ": this folder holds a different sweep (its recipe, overrides, trial values or budgets "
                                "differ); use another out_dir, or delete the folder to start afresh");
  sw.decided = s.value("decided_rungs", int64_t(0));
  for (const auto& j : s["trials"]) {
    const int id = j.at("id").get<int>();
    if (id < 1 || id > int(sw.trials.size())) throw std::runtime_error(sw.state_path + ": unknown trial id");
    Trial& t = sw.trials[id - 1];
    t.status = j.at("status").get<std::string>();
    t.rung = j.at("rung").get<int64_t>();
    t.steps = j.at("steps").get<int64_t>();
    t.has_metric = j.contains("metric") && j["metric"].is_number();
    t.metric = t.has_metric ? j["metric"].get<double>() : std::numeric_limits<double>::quiet_NaN();
    t.note = j.value("note", "");
  }
}

// Best first: trials with a metric, those that got further (more rungs), the metric, the id.
std::vector<const Trial*> ranked(const Sweep& sw) {
  std::vector<const Trial*> r;
  for (const Trial& t : sw.trials) r.push_back(&t);
  std::stable_sort(r.begin(), r.end(), [&](const Trial* a, const Trial* b) {
    if (a->has_metric != b->has_metric) return a->has_metric;
    if (a->rung != b->rung) return a->rung > b->rung;
    if (better(a->metric, b->metric, sw.spec.mode)) return true;
    if (better(b->metric, a->metric, sw.spec.mode)) return false;
    return a->id < b->id;
  });
  return r;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string status_text(const Trial& t) {
  std::string s = t.status;
  const std::string note = t.note.size() > 90 ? t.note.substr(0, 87) + "..." : t.note;
  if (note.rfind(t.status, 0) == 0) s = note;  // "stopped early at rung 1 of 3"
  else if (!note.empty()) s += ": " + note;
  for (char& c : s)
    if (c == '|' || c == '\n') c = ' ';
  return s;
}

// results.csv and results.md; returns the Markdown table.
std::string write_results(const Sweep& sw) {
  const auto order = ranked(sw);
  std::string csv = "rank,trial";
  std::string md_head = "| rank | trial |", md_rule = "|---:|---|";
  for (const Dimension& d : sw.spec.space) {
    csv.push_back(',');
    csv += csv_field(d.key);
    md_head += " " + d.key + " |";
    md_rule += "---:|";
  }
  csv += "," + csv_field(sw.spec.metric) + ",status,steps\n";
  md_head += " " + sw.spec.metric + " (" + sw.spec.mode + ") | status | steps |\n";
  md_rule += "---:|---|---:|\n";
  std::string md_rows;
  for (size_t i = 0; i < order.size(); ++i) {
    const Trial& t = *order[i];
    csv += std::to_string(i + 1) + "," + t.name;
    md_rows += "| " + std::to_string(i + 1) + " | " + t.name + " |";
    for (const auto& [k, x] : t.values) {
      csv.push_back(',');
      csv += csv_field(x);
      md_rows += " " + x + " |";
    }
    csv += "," + fmt(t.has_metric ? t.metric : NAN) + "," + t.status + "," + std::to_string(t.steps) + "\n";
    md_rows += " " + fmt(t.has_metric ? t.metric : NAN) + " | " + status_text(t) + " | " + std::to_string(t.steps) + " |\n";
  }
  const std::string table = md_head + md_rule + md_rows;
  std::string md = "# Sweep " + sw.spec.out_dir + "\n\nBase recipe `" + sw.spec.recipe + "`, " + sw.spec.method +
                   " search, " + std::to_string(sw.trials.size()) + " trials, ranked by the last evaluation's " +
                   sw.spec.metric + " (" + sw.spec.mode + ")";
  if (!sw.budgets.empty()) {
    md += "; successive halving (eta " + std::to_string(sw.spec.eta) + ") with rung budgets";
    for (int64_t b : sw.budgets) md += " " + std::to_string(b);
    md += " steps";
  }
  md += ".\n";
  if (!sw.fixed.empty()) {
    md += "Every trial: `";
    for (size_t i = 0; i < sw.fixed.size(); ++i) md += (i ? " " : "") + sw.fixed[i];
    md += "`.\n";
  }
  md += "\n" + table;
  io::write_file_atomic((fs::path(sw.spec.out_dir) / "results.csv").string(), [&](std::FILE* f) { std::fputs(csv.c_str(), f); });
  io::write_file_atomic((fs::path(sw.spec.out_dir) / "results.md").string(), [&](std::FILE* f) { std::fputs(md.c_str(), f); });
  return table;
}

void finish_report(const Sweep& sw, bool complete) {
  const std::string table = write_results(sw);
  std::printf("\n[sweep] %s\n%s", complete ? "results" : "results so far", table.c_str());
  const auto order = ranked(sw);
  if (!order.empty() && order.front()->has_metric)
    std::printf("[sweep] best: %s, %s %s: %s\n", order.front()->name.c_str(), sw.spec.metric.c_str(),
                fmt(order.front()->metric).c_str(), values_text(order.front()->values).c_str());
  std::printf("[sweep] results: %s/results.csv and results.md; state: %s\n", sw.spec.out_dir.c_str(),
              sw.state_path.c_str());
  if (!complete) return;
  std::vector<std::string> runs;
  for (const Trial& t : sw.trials)
    if (fs::exists(fs::path(t.dir) / "metrics.jsonl")) runs.push_back(t.dir);
  if (runs.empty()) return;
  const std::string stem = (fs::path(sw.spec.out_dir) / "sweep").string();
  try {
    // The sweep at a glance: the ranking metric of every trial (finished and stopped early apart),
    // and each trial's evaluations of that metric over steps. Full curves: sweep_curves.png.
    Chart by_trial{"final " + sw.spec.metric + " by trial", "trial", sw.spec.metric, {}};
    Series done{"ran to the end", {}, {}}, stopped{"stopped early", {}, {}};
    done.points_only = stopped.points_only = true;
    Chart over_steps{sw.spec.metric + " during training", "step", sw.spec.metric, {}};
    for (const Trial& t : sw.trials) {
      if (!t.has_metric) continue;
      (t.status == "stopped" ? stopped : done).x.push_back(double(t.id));
      (t.status == "stopped" ? stopped : done).y.push_back(t.metric);
      Series s{t.name, {}, {}};
      s.markers = true;
      std::ifstream f(fs::path(t.dir) / "metrics.jsonl");
      for (std::string line; std::getline(f, line);) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object() && j.value("split", "") == "val" && j.contains(sw.spec.metric) && j[sw.spec.metric].is_number()) {
          s.x.push_back(j.value("step", 0.0));
          s.y.push_back(j[sw.spec.metric].get<double>());
        }
      }
      if (!s.x.empty()) over_steps.series.push_back(s);
    }
    for (Series* s : {&done, &stopped})
      if (!s->x.empty()) by_trial.series.push_back(*s);
    if (!by_trial.series.empty()) {
      write_png(stem + ".png", {by_trial, over_steps});
      write_svg(stem + ".svg", {by_trial, over_steps});
      std::printf("[sweep] summary plot: %s.png (and .svg)\n", stem.c_str());
    }
    plot_runs(runs, stem + "_curves");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: could not draw the sweep plot: %s\n", e.what());
  }
}

// Loads every trial's recipe once (the task's own schema checks each key and value) without
// training; throws std::invalid_argument naming the trial and the problem.
void validate(const Sweep& sw) {
  const std::string sentinel = std::string("device '") + kValidateDevice + "'";
  for (const Trial& t : sw.trials) {
    std::vector<std::string> ov = sw.fixed;
    for (const std::string& o : as_overrides(t.values)) ov.push_back(o);
    const std::string who = sw.spec.source + ": trial " + std::to_string(t.id) + " (" + values_text(t.values) + "): ";
    std::string task;
    try {
      task = recipe_task(sw.spec.recipe, ov);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(sw.spec.source + ": base recipe: " + e.what());
    }
    const auto known = task_metrics(task);
    if (!known.empty() && std::find(known.begin(), known.end(), sw.spec.metric) == known.end()) {
      std::string list;
      for (const auto& m : known) list += (list.empty() ? "" : ", ") + m;
      throw std::invalid_argument(sw.spec.source + ": metric '" + sw.spec.metric + "' is not an evaluation metric of task " +
                                  task + " (" + list + ")");
    }
    ov.push_back("out_dir=" + t.dir);
    ov.push_back("steps=0");
    ov.push_back(std::string("device=") + kValidateDevice);
    try {
      run_task(task, sw.spec.recipe, ov);
    } catch (const std::invalid_argument& e) {
      const std::string msg = e.what();
      if (msg.find(sentinel) != std::string::npos || msg.find("steps, grad_accum and batch_size must be >= 1") != std::string::npos)
        continue;  // the recipe loaded: keys and values are good
      throw std::invalid_argument(who + msg);
    } catch (const std::exception& e) {
      throw std::invalid_argument(who + e.what());
    }
    throw std::logic_error("sweep validation: the task did not stop at its device check");
  }
}

}  // namespace

int cmd_sweep(int argc, char** argv) {
  const Args a = parse("sweep", argc, argv, {}, {"dry-run"});
  if (a.positional.size() != 1) throw std::invalid_argument("expected exactly one sweep file");
  Sweep sw;
  sw.spec = load_spec(a.positional[0], a.overrides);
  if (a.has("dry-run")) sw.spec.dry_run = true;
  const Spec& spec = sw.spec;
  sw.fixed = spec.overrides;
  sw.state_path = (fs::path(spec.out_dir) / "sweep_state.json").string();
  const std::vector<Values> values = make_trials(spec);
  for (size_t i = 0; i < values.size(); ++i) {
    Trial t;
    t.id = int(i + 1);
    char name[32];
    std::snprintf(name, sizeof name, "trial-%03d", t.id);
    t.name = name;
    t.dir = (fs::path(spec.out_dir) / name).string();
    t.values = values[i];
    sw.trials.push_back(t);
  }
  validate(sw);

  if (spec.halving) {
    const std::string epochs = recipe_value(spec.recipe, sw.fixed, "epochs");
    if (!epochs.empty() && std::strtod(epochs.c_str(), nullptr) > 0)
      throw std::invalid_argument(spec.source + ": successive halving counts steps, but the recipe (or an override) sets epochs=" + epochs +
                                  "; add steps=N and epochs=0 to the sweep's overrides");
    const std::string steps = recipe_value(spec.recipe, sw.fixed, "steps");
    if (steps.empty())
      throw std::invalid_argument(spec.source + ": successive halving needs the total step count: give steps in the recipe "
                                  "or in the sweep's overrides (steps=N)");
    try {
      sw.budgets = rung_budgets(std::strtoll(steps.c_str(), nullptr, 10), spec.rungs, spec.eta);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(spec.source + ": " + e.what());
    }
    const int64_t first = sw.budgets.front();
    for (const char* key : {"eval_every", "save_every"}) {
      const int64_t every = std::strtoll(recipe_value(spec.recipe, sw.fixed, key).c_str(), nullptr, 10);
      if (every <= 0 || first % every != 0) sw.fixed.push_back(std::string(key) + "=" + std::to_string(first));
    }
  }
  nlohmann::json trial_values = nlohmann::json::array();
  for (const Trial& t : sw.trials) trial_values.push_back(as_overrides(t.values));
  sw.setup = {{"recipe", spec.recipe}, {"overrides", sw.fixed}, {"metric", spec.metric}, {"mode", spec.mode},
              {"budgets", sw.budgets},  {"eta", spec.halving ? spec.eta : 0}, {"trials", trial_values}};
  load_state(sw);  // refuses a state of a different sweep: before anything is written

  const size_t rungs = sw.budgets.empty() ? 1 : sw.budgets.size();
  std::printf("[sweep] %s: %s search, %zu trials of %s, ranked by %s (%s)", spec.source.c_str(), spec.method.c_str(),
              sw.trials.size(), spec.recipe.c_str(), spec.metric.c_str(), spec.mode.c_str());
  if (!sw.budgets.empty()) {
    std::printf("; successive halving, eta %ld, rung budgets", long(spec.eta));
    for (int64_t b : sw.budgets) std::printf(" %ld", long(b));
  }
  std::printf("\n");
  if (spec.dry_run) {
    for (const Trial& t : sw.trials)
      std::printf("  %s  %s%s\n", t.name.c_str(), values_text(t.values).c_str(),
                  t.status == "pending" ? "" : ("  [" + t.status + "]").c_str());
    std::printf("[sweep] dry run: nothing trained or written\n");
    return 0;
  }
  fs::create_directories(spec.out_dir);
  save_state(sw);

  int64_t runs = 0;
  const size_t n = sw.trials.size();
  for (size_t r = 0; r < rungs; ++r) {
    const bool last_rung = r + 1 == rungs;
    for (Trial& t : sw.trials) {
      if (t.rung != int64_t(r) || t.status == "done" || t.status == "stopped") continue;
      if (t.status == "failed" && t.rung < sw.decided) continue;  // its rung was decided without it
      if (spec.max_trials_this_run > 0 && runs >= spec.max_trials_this_run) {
        std::printf("\n[sweep] stopping after %ld trial runs (max_trials_this_run); run the same command again to continue\n",
                    long(runs));
        finish_report(sw, false);
        return 0;
      }
      const int64_t target = sw.budgets.empty() ? 0 : sw.budgets[r];
      int64_t ck = latest_checkpoint_step(t.dir);
      const bool resume = (t.status == "running" || t.rung > 0) && ck > 0;
      if (!resume) {
        if (t.rung > 0) {
          t.status = "failed", t.note = t.dir + " has no checkpoint to continue from";
          save_state(sw);
          continue;
        }
        fs::remove_all(t.dir);
        ck = 0;
      }
      int64_t stop_after = last_rung ? 0 : target - ck;
      bool interrupting = false;
      if (spec.interrupt_after_steps > 0 && runs == 0 && (stop_after == 0 || spec.interrupt_after_steps < stop_after)) {
        stop_after = spec.interrupt_after_steps;
        interrupting = true;
      }
      std::printf("\n[sweep] === %s (%d of %zu)%s: %s%s ===\n", t.name.c_str(), t.id, n,
                  sw.budgets.empty() ? ""
                                     : (", rung " + std::to_string(r + 1) + " of " + std::to_string(rungs) + ", to step " +
                                        std::to_string(target))
                                           .c_str(),
                  values_text(t.values).c_str(), resume ? (" (resuming from step " + std::to_string(ck) + ")").c_str() : "");
      std::fflush(stdout);
      std::vector<std::string> ov = sw.fixed;
      for (const std::string& o : as_overrides(t.values)) ov.push_back(o);
      ov.push_back("out_dir=" + t.dir);
      ov.push_back(std::string("resume=") + (resume ? "true" : "false"));
      ov.push_back("stop_after=" + std::to_string(stop_after));
      t.status = "running";
      t.note.clear();
      save_state(sw);
      ++runs;
      if (last_rung || stop_after > 0) {
        try {
          run_task(recipe_task(spec.recipe, ov), spec.recipe, ov);
        } catch (const std::exception& e) {
          t.status = "failed";
          t.note = e.what();
          std::printf("\n[sweep] %s failed: %s\n", t.name.c_str(), e.what());
          save_state(sw);
          continue;
        }
      }
      std::fflush(stdout);
      if (interrupting) {
        t.steps = latest_checkpoint_step(t.dir);
        save_state(sw);
        std::printf("\n[sweep] interrupted %s after %ld steps of this run (interrupt_after_steps); run the same command "
                    "again to resume it\n", t.name.c_str(), long(spec.interrupt_after_steps));
        finish_report(sw, false);
        return 0;
      }
      const RunMetrics m = read_run_metrics(t.dir, spec.metric);
      t.metric = m.metric;
      t.has_metric = m.has_metric;
      t.steps = m.train_steps;
      t.rung = int64_t(r) + 1;
      std::string outcome;
      if (!m.has_metric) {
        t.status = "failed";
        t.rung = int64_t(r);
        t.note = "no evaluation reported metric '" + spec.metric + "' (see " + t.dir + "/metrics.jsonl)";
        outcome = "failed: " + t.note;
      } else if (last_rung) {
        t.status = "done";
        outcome = "done";
      } else if (latest_checkpoint_step(t.dir) >= target) {
        t.status = "pending";
        outcome = "rung " + std::to_string(r + 1) + " done";
      } else {
        t.status = "done";
        t.note = "finished at step " + std::to_string(t.steps) + " (early stopping)";
        outcome = "done (early stopping)";
      }
      save_state(sw);
      std::printf("\n[sweep] %s (%d of %zu) %s: %s %s at step %ld; %s\n", t.name.c_str(), t.id, n,
                  values_text(t.values).c_str(), spec.metric.c_str(), fmt(t.metric).c_str(), long(m.metric_step),
                  outcome.c_str());
      std::fflush(stdout);
    }
    if (last_rung || sw.decided > int64_t(r)) continue;
    // The rung's decision: the best ceil(n/eta) of the trials that ran it go on.
    std::vector<Trial*> ran;
    for (Trial& t : sw.trials)
      if ((t.rung == int64_t(r) + 1 && (t.status == "pending" || t.status == "done")) ||
          (t.rung == int64_t(r) && t.status == "failed"))
        ran.push_back(&t);
    std::stable_sort(ran.begin(), ran.end(), [&](const Trial* x, const Trial* y) {
      if (x->status == "failed" || y->status == "failed") return x->status != "failed" && y->status == "failed";
      return better(x->metric, y->metric, spec.mode);
    });
    const size_t keep = (ran.size() + size_t(spec.eta) - 1) / size_t(spec.eta);
    std::string kept, dropped;
    for (size_t i = 0; i < ran.size(); ++i) {
      Trial& t = *ran[i];
      if (t.status != "pending") continue;
      if (i < keep) {
        kept += " " + t.name;
      } else {
        t.status = "stopped";
        t.note = "stopped early at rung " + std::to_string(r + 1) + " of " + std::to_string(rungs);
        dropped += " " + t.name;
      }
    }
    sw.decided = int64_t(r) + 1;
    save_state(sw);
    std::printf("\n[sweep] rung %zu of %zu (%ld steps): %zu trials ranked by %s; continue:%s; stopped early:%s\n", r + 1,
                rungs, long(sw.budgets[r]), ran.size(), spec.metric.c_str(), kept.empty() ? " none" : kept.c_str(),
                dropped.empty() ? " none" : dropped.c_str());
  }
  finish_report(sw, true);
  size_t failed = 0;
  for (const Trial& t : sw.trials) failed += t.status == "failed";
  if (failed) {
    std::fprintf(stderr, "hone sweep: %zu of %zu trials failed (see results.md); run the command again to retry them\n",
                 failed, n);
    return 1;
  }
  return 0;
}

}  // namespace hone::cli
