// `hone predict --model RUN [--in FILE]`: labels sentences (one per line, from a file or stdin)
// with the probability of every label. `hone eval --model RUN --data FILE ...`: accuracy,
// macro-F1, per-class precision/recall and the confusion matrix on a labelled file.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "engine/data/labeled_text.h"
#include "tools/classifier_session.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/run_device.h"
#include "engine/autograd/autocast_mode.h"

namespace hone::cli {

int cmd_predict(int argc, char** argv) {
  const Args a = parse("predict", argc, argv, {"model", "in", "device", "precision"});
  ClassifierSession s = ClassifierSession::open(a.str("model"));
  place_model(*s.loaded.model, device_flag(a));
  AutocastGuard autocast(precision_flag(a));
  std::ifstream file;
  if (a.has("in")) {
    file.open(a.str("in"));
    if (!file) throw std::runtime_error(a.str("in") + ": cannot read the input file");
  }
  std::istream& in = a.has("in") ? static_cast<std::istream&>(file) : std::cin;
  std::vector<std::string> lines;
  std::vector<TokenizedExample> ex;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    lines.push_back(line);
    ex.push_back(s.encode(line));
  }
  std::vector<int64_t> pred;
  Tensor probs;
  s.task->predict(ex, pred, probs);
  const std::vector<float> p = probs.to_vector<float>();
  const size_t K = s.labels.size();
  for (size_t i = 0; i < lines.size(); ++i) {
    std::printf("%s\t%.4f", s.labels[pred[i]].c_str(), p[i * K + pred[i]]);
    for (size_t k = 0; k < K; ++k) std::printf("\t%s=%.4f", s.labels[k].c_str(), p[i * K + k]);
    std::printf("\t%s\n", lines[i].c_str());
  }
  return 0;
}

int cmd_eval(int argc, char** argv) {
  const Args a = parse("eval", argc, argv,
                       {"model", "data", "text-column", "text-pair-column", "label-column", "format", "device", "precision"},
                       {"no-header"});
  ClassifierSession s = ClassifierSession::open(a.str("model"));
  place_model(*s.loaded.model, device_flag(a));
  AutocastGuard autocast(precision_flag(a));
  data::LabeledTextOptions o;
  o.text_column = a.str("text-column", "text");
  o.text_pair_column = a.str("text-pair-column", "");
  o.label_column = a.str("label-column", "label");
  o.format = a.str("format", "");
  o.has_header = !a.has("no-header");
  o.label_names = s.labels;
  const data::LabeledDataset d = data::read_labeled_text(a.str("data"), o);
  std::vector<TokenizedExample> ex;
  for (const auto& e : d.examples) ex.push_back(s.encode(e.text, e.text_pair, e.label));
  ClassificationTask task(*s.loaded.model,
                          [m = s.loaded.model](const Tensor& i, const Tensor& t, const Tensor& k) { return m->logits({i, t, k}); },
                          {TokenizedExample{}}, ex, s.labels, 32, s.tokenizer->pad_id(), 0.0, 0);
  const auto m = task.evaluate();
  std::printf("%s: %zu examples, accuracy %.2f%%, macro-F1 %.4f, loss %.4f\n%s", a.str("data").c_str(), ex.size(),
              100 * m.at("accuracy"), m.at("macro_f1"), m.at("loss"), task.last_report().c_str());
  return 0;
}

}  // namespace hone::cli
