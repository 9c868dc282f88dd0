// `hone sweep` end to end, as a user runs it: grid and seeded random search, successive halving,
// an interrupted sweep that resumes, and bad sweep files refused before any training. Every trial
// fine-tunes a tiny random-init BERT (vocabulary built from the sentiment sample's words) on
// data/sentiment-sample for a few steps, so the whole suite takes seconds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tests/tools/cli_run.h"

namespace fs = std::filesystem;

namespace hone {
namespace {

using testing_cli::hone_binary;
using testing_cli::run;

fs::path sentiment_data() { return fs::path(HONE_SOURCE_DIR) / "data" / "sentiment-sample"; }

std::string read_text(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

nlohmann::json read_state(const fs::path& out_dir) { return nlohmann::json::parse(read_text(out_dir / "sweep_state.json")); }

std::vector<nlohmann::json> read_metrics(const fs::path& run_dir) {
  std::vector<nlohmann::json> out;
  std::ifstream f(run_dir / "metrics.jsonl");
  for (std::string line; std::getline(f, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Rows of a CSV without quoted fields.
std::vector<std::vector<std::string>> read_csv(const fs::path& p) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream f(p);
  for (std::string line; std::getline(f, line);) {
    std::vector<std::string> row;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) row.push_back(cell);
    rows.push_back(row);
  }
  return rows;
}

class SweepCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(hone_binary())) GTEST_SKIP() << "hone binary not built at " << hone_binary();
    if (!fs::exists(sentiment_data() / "train.tsv")) GTEST_SKIP() << "no " << sentiment_data();
    dir_ = fs::temp_directory_path() / ("hone-sweep-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "model");
    // A WordPiece vocabulary of the sample's own words (lower-cased), and a tiny BERT over it.
    std::set<std::string> words;
    std::ifstream train(sentiment_data() / "train.tsv");
    for (std::string line; std::getline(train, line);) {
      std::string w;
      for (char c : line + " ") {
        const unsigned char u = static_cast<unsigned char>(c);
        if (std::isalnum(u)) {
          w += char(std::tolower(u));
          continue;
        }
        if (!w.empty()) words.insert(w);
        w.clear();
        if (std::ispunct(u)) words.insert(std::string(1, c));
      }
    }
    std::ofstream vocab(dir_ / "model" / "vocab.txt");
    size_t vocab_size = 0;
    for (const char* s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) vocab << s << "\n", ++vocab_size;
    for (const std::string& w : words) vocab << w << "\n", ++vocab_size;
    vocab.close();
    std::ofstream(dir_ / "model" / "config.json")
        << R"({"model_type":"bert","vocab_size":)" << vocab_size
        << R"(,"hidden_size":16,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":32,)"
        << R"("max_position_embeddings":64,"type_vocab_size":2,"hidden_dropout_prob":0.1,"attention_probs_dropout_prob":0.1})";
    std::ofstream(dir_ / "recipe.yaml") << "task: sequence_classification\nmodel: " << (dir_ / "model").string()
                                        << "\ninit: random\ndata:\n  train: " << (sentiment_data() / "train.tsv").string()
                                        << "\n  val: " << (sentiment_data() / "test.tsv").string()
                                        << "\n  text_column: sentence\n  label_column: label\n"
                                        << "max_length: 32\nbatch_size: 16\nsteps: 8\neval_every: 4\n"
                                        << "optimizer:\n  lr: 1.0e-3\nschedule:\n  decay: constant\n"
                                        << "out_dir: " << (dir_ / "unused").string() << "\nseed: 7\n";
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  // Writes <dir>/<name>.yaml: the base recipe and out_dir <dir>/<name>, then `body`.
  std::string sweep_file(const std::string& name, const std::string& body) {
    const fs::path p = dir_ / (name + ".yaml");
    std::ofstream(p) << "recipe: " << (dir_ / "recipe.yaml").string() << "\nout_dir: " << (dir_ / name).string() << "\n"
                     << body;
    return p.string();
  }
  std::string sweep(const std::string& file, const std::string& args = "") {
    return hone_binary().string() + " sweep " + file + (args.empty() ? "" : " " + args);
  }
  fs::path dir_;
};

TEST_F(SweepCli, GridRunsEveryCombinationAndRanksByTheMetric) {
  const std::string f = sweep_file("grid",
                                   "method: grid\nmetric: loss\nmode: min\n"
                                   "space:\n  optimizer.lr: [1.0e-4, 3.0e-3]\n  batch_size: [8, 16]\n");
  std::string out;
  ASSERT_EQ(run(sweep(f), &out), 0) << out;
  const fs::path o = dir_ / "grid";
  for (const char* t : {"trial-001", "trial-002", "trial-003", "trial-004"}) EXPECT_TRUE(fs::is_directory(o / t)) << t;
  EXPECT_FALSE(fs::exists(o / "trial-005"));
  for (const char* f : {"results.csv", "results.md", "sweep.png", "sweep.svg", "sweep_state.json"})
    EXPECT_TRUE(fs::exists(o / f)) << f;

  const auto csv = read_csv(o / "results.csv");
  ASSERT_EQ(csv.size(), 5u) << read_text(o / "results.csv");
  EXPECT_EQ(csv[0], (std::vector<std::string>{"rank", "trial", "optimizer.lr", "batch_size", "loss", "status", "steps"}));
  std::set<std::pair<std::string, std::string>> combos;
  double prev = -1;
  for (size_t i = 1; i < csv.size(); ++i) {
    ASSERT_EQ(csv[i].size(), 7u);
    EXPECT_EQ(csv[i][0], std::to_string(i));
    combos.insert({csv[i][2], csv[i][3]});
    const double loss = std::stod(csv[i][4]);
    EXPECT_GE(loss, prev) << "rows must be sorted by the metric (min first)";
    prev = loss;
    EXPECT_EQ(csv[i][5], "done");
    EXPECT_EQ(csv[i][6], "8");
    // The trial ran with its own values: the first step's lr is the swept peak lr (constant schedule).
    const auto m = read_metrics(o / csv[i][1]);
    ASSERT_FALSE(m.empty());
    EXPECT_DOUBLE_EQ(m.front().at("lr").get<double>(), std::stod(csv[i][2]));
  }
  EXPECT_EQ(combos.size(), 4u) << "every combination once";
  const std::string md = read_text(o / "results.md");
  EXPECT_NE(md.find("| rank | trial | optimizer.lr | batch_size | loss (min) | status | steps |"), std::string::npos) << md;
  EXPECT_NE(out.find("[sweep] best: " + csv[1][1]), std::string::npos) << out;
}

TEST_F(SweepCli, TrialsStartFromTheSameModelAndFreshState) {
  // log_every changes nothing a trial computes: the second trial, run in the same process after the
  // first, must reproduce it exactly (same initial weights, data order, dropout and optimizer state).
  const std::string f = sweep_file("same", "metric: accuracy\nspace:\n  log_every: [5, 7]\n");
  std::string out;
  ASSERT_EQ(run(sweep(f), &out), 0) << out;
  const auto a = read_metrics(dir_ / "same" / "trial-001"), b = read_metrics(dir_ / "same" / "trial-002");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GE(a.size(), 10u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].at("loss"), b[i].at("loss")) << "line " << i;
}

TEST_F(SweepCli, RandomSearchIsSeeded) {
  const std::string f = sweep_file("rnd",
                                   "method: random\ntrials: 3\nseed: 3\nmetric: accuracy\n"
                                   "space:\n  optimizer.lr: {log_min: 1.0e-5, log_max: 1.0e-2}\n"
                                   "  optimizer.weight_decay: {min: 0.0, max: 0.1}\n"
                                   "  batch_size: [8, 16, 32]\n  schedule.warmup_steps: {min: 0, max: 4}\n");
  std::string a, b, c;
  ASSERT_EQ(run(sweep(f, "--dry-run"), &a), 0) << a;
  ASSERT_EQ(run(sweep(f, "--dry-run"), &b), 0) << b;
  ASSERT_EQ(run(sweep(f, "--dry-run seed=4"), &c), 0) << c;
  EXPECT_EQ(a, b) << "same seed, same trials";
  EXPECT_NE(a, c) << "another seed, other trials";
  EXPECT_NE(a.find("trial-003"), std::string::npos) << a;
  EXPECT_EQ(a.find("trial-004"), std::string::npos) << a;
  EXPECT_FALSE(fs::exists(dir_ / "rnd")) << "a dry run writes nothing";

  // The sweep runs exactly the trials the dry run listed, values within their ranges.
  std::string out;
  ASSERT_EQ(run(sweep(f, "steps=4"), &out), 0) << out;
  const auto state = read_state(dir_ / "rnd");
  ASSERT_EQ(state["trials"].size(), 3u);
  for (const auto& t : state["trials"]) {
    std::string line = "  " + t["dir"].get<std::string>() + "  ";
    for (const char* k : {"optimizer.lr", "optimizer.weight_decay", "batch_size", "schedule.warmup_steps"})
      line += std::string(k) + "=" + t["values"][k].get<std::string>() + (std::string(k) == "schedule.warmup_steps" ? "" : " ");
    EXPECT_NE(a.find(line + "\n"), std::string::npos) << line << "\n" << a;
    const double lr = std::stod(t["values"]["optimizer.lr"].get<std::string>());
    EXPECT_TRUE(lr >= 1e-5 && lr <= 1e-2) << lr;
    const std::string warmup = t["values"]["schedule.warmup_steps"].get<std::string>();
    EXPECT_TRUE(warmup.size() == 1 && warmup[0] >= '0' && warmup[0] <= '4') << "integers for an integer range: " << warmup;
    EXPECT_EQ(t["status"], "done");
  }
}

TEST_F(SweepCli, SuccessiveHalvingStopsWeakTrials) {
  const std::string f = sweep_file("sh",
                                   "method: grid\nmetric: loss\nmode: min\noverrides: [steps=16]\n"
                                   "successive_halving:\n  rungs: 3\n  eta: 2\n"
                                   "space:\n  optimizer.lr: [1.0e-4, 1.0e-3, 3.0e-3, 1.0e-2]\n");
  std::string out;
  ASSERT_EQ(run(sweep(f), &out), 0) << out;
  EXPECT_NE(out.find("rung budgets 4 8 16"), std::string::npos) << out;
  const auto state = read_state(dir_ / "sh");
  ASSERT_EQ(state["trials"].size(), 4u);
  std::map<std::string, int> by_status;
  std::vector<double> stopped_at_1, went_on;
  for (const auto& t : state["trials"]) {
    const std::string status = t["status"];
    ++by_status[status];
    const auto m = read_metrics(dir_ / "sh" / t["dir"].get<std::string>());
    int train_lines = 0;
    for (const auto& line : m) train_lines += line.contains("grad_norm");
    EXPECT_EQ(train_lines, t["steps"].get<int>()) << "each step logged once, across the rungs";
    if (status == "stopped") {
      EXPECT_NE(t["note"].get<std::string>().find("stopped early at rung"), std::string::npos);
      if (t["rung"] == 1) {
        EXPECT_EQ(t["steps"], 4);
        stopped_at_1.push_back(t["metric"].get<double>());
      } else {
        EXPECT_EQ(t["rung"], 2);
        EXPECT_EQ(t["steps"], 8);
      }
    } else {
      EXPECT_EQ(status, "done");
      EXPECT_EQ(t["steps"], 16);
      EXPECT_TRUE(fs::exists(dir_ / "sh" / t["dir"].get<std::string>() / "eval_report.txt"));
    }
    if (t["rung"].get<int>() >= 2) {
      // Its loss after rung 1: the evaluation at step 4.
      for (const auto& line : m)
        if (line.value("split", "") == "val" && line["step"] == 4) went_on.push_back(line["loss"].get<double>());
    }
  }
  EXPECT_EQ(by_status["done"], 1);
  EXPECT_EQ(by_status["stopped"], 3);
  ASSERT_EQ(stopped_at_1.size(), 2u);
  ASSERT_EQ(went_on.size(), 2u);
  for (double s : stopped_at_1)
    for (double w : went_on) EXPECT_LE(w, s) << "the better half at rung 1 went on";
  const auto csv = read_csv(dir_ / "sh" / "results.csv");
  ASSERT_EQ(csv.size(), 5u);
  EXPECT_EQ(csv[1][4], "done") << "the finished trial ranks first";
}

TEST_F(SweepCli, InterruptedSweepResumesWithoutRerunningFinishedTrials) {
  const std::string f = sweep_file("resume", "metric: accuracy\noverrides: [save_every=4]\n"
                                             "space:\n  optimizer.lr: [1.0e-3, 3.0e-3]\n");
  const fs::path o = dir_ / "resume";
  std::string out;
  // 1. Killed (simulated) in the middle of the first trial: it stays "running", with a checkpoint at step 4.
  ASSERT_EQ(run(sweep(f, "interrupt_after_steps=6"), &out), 0) << out;
  auto state = read_state(o);
  EXPECT_EQ(state["trials"][0]["status"], "running");
  EXPECT_EQ(state["trials"][1]["status"], "pending");
  EXPECT_FALSE(fs::exists(o / "trial-002"));
  // 2. Run again, one trial run at most: the interrupted trial continues from its checkpoint.
  ASSERT_EQ(run(sweep(f, "max_trials_this_run=1"), &out), 0) << out;
  EXPECT_NE(out.find("resumed from step 4"), std::string::npos) << out;
  state = read_state(o);
  EXPECT_EQ(state["trials"][0]["status"], "done");
  EXPECT_EQ(state["trials"][0]["steps"], 8);
  EXPECT_EQ(state["trials"][1]["status"], "pending");
  EXPECT_FALSE(fs::exists(o / "trial-002"));
  const std::string first = read_text(o / "trial-001" / "metrics.jsonl");
  // 3. Again: only the second trial runs.
  ASSERT_EQ(run(sweep(f), &out), 0) << out;
  EXPECT_EQ(out.find("=== trial-001"), std::string::npos) << "a finished trial is not rerun\n" << out;
  EXPECT_NE(out.find("=== trial-002"), std::string::npos) << out;
  EXPECT_EQ(read_text(o / "trial-001" / "metrics.jsonl"), first);
  state = read_state(o);
  for (const auto& t : state["trials"]) EXPECT_EQ(t["status"], "done");
  EXPECT_TRUE(fs::exists(o / "sweep.png"));
  // 4. A finished sweep run again trains nothing; a changed sweep in the same folder is refused.
  ASSERT_EQ(run(sweep(f), &out), 0) << out;
  EXPECT_EQ(out.find("==="), std::string::npos) << out;
  EXPECT_EQ(run(sweep(f, "batch_size=8"), &out), 2) << out;
  EXPECT_NE(out.find("different sweep"), std::string::npos) << out;

  // The interrupted and resumed trial trained exactly as an uninterrupted one.
  const std::string g = sweep_file("straight", "metric: accuracy\noverrides: [save_every=4]\n"
                                               "space:\n  optimizer.lr: [1.0e-3]\n");
  ASSERT_EQ(run(sweep(g), &out), 0) << out;
  const auto resumed = read_metrics(o / "trial-001"), straight = read_metrics(dir_ / "straight" / "trial-001");
  ASSERT_EQ(resumed.size(), straight.size());
  for (size_t i = 0; i < resumed.size(); ++i) EXPECT_EQ(resumed[i].at("loss"), straight[i].at("loss")) << "line " << i;
}

TEST_F(SweepCli, BadSweepsFailBeforeTraining) {
  const std::string ok_space = "space:\n  optimizer.lr: [1.0e-3]\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"metric: accuracy\nspace: {}\n", "the sweep space is empty"},
      {"metric: accuracy\n", "the sweep space is empty"},
      {"metric: accuracy\nmethod: bayes\n" + ok_space, "unknown method 'bayes'"},
      {"metric: accuracy\nspace:\n  optimizer.lrr: [1.0e-3]\n", "did you mean 'optimizer.lr'"},
      {"metric: accuracy\nspace:\n  batch_size: [8, many]\n", "'batch_size' expects an integer"},
      {"metric: accuracy\nspace:\n  optimizer.lr: []\n", "'optimizer.lr' has an empty list"},
      {"metric: accuracy\nmethod: random\ntrials: 2\nspace:\n  optimizer.lr: {min: 0.1, max: 0.01}\n",
       "min (0.1) is greater than max (0.01)"},
      {"metric: accuracy\nmethod: random\ntrials: 0\n" + ok_space, "trials >= 1"},
      {"metric: accuracy\nsuccessive_halving: {rungs: 2, eta: 1}\n" + ok_space, "eta must be >= 2"},
      {"metric: accuracy\nsuccessive_halving: {rungs: 0, eta: 2}\n" + ok_space, "rungs must be >= 1"},
      {"metric: accuracy\nmode: maximum\n" + ok_space, "mode must be min or max"},
      {"metric: acc\n" + ok_space, "metric 'acc' is not an evaluation metric"},
      {"metric: accuracy\nspace:\n  optimizer.lr: {min: 0.001, max: 0.01}\n", "grid search needs a list"},
      {"metric: accuracy\noverrides: [epochs=2]\nsuccessive_halving: {rungs: 2}\n" + ok_space, "successive halving counts steps"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string name = "bad" + std::to_string(i);
    const std::string f = sweep_file(name, cases[i].first);
    std::string out;
    EXPECT_NE(run(sweep(f), &out), 0) << cases[i].first;
    EXPECT_NE(out.find(cases[i].second), std::string::npos) << "expected '" << cases[i].second << "' in:\n" << out;
    EXPECT_FALSE(fs::exists(dir_ / name)) << "nothing written for " << cases[i].first;
  }
}

}  // namespace
}  // namespace hone
