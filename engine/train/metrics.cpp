#include "engine/train/metrics.h"

#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <numeric>
#include <stdexcept>

namespace hone {
namespace {

double ratio(int64_t num, int64_t den) { return den == 0 ? 0.0 : double(num) / double(den); }

double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

// Class names for printing: the given ones, or the ids when none are given.
std::vector<std::string> names_for(const std::vector<std::string>& label_names, int64_t k) {
  if (label_names.empty()) {
    std::vector<std::string> ids;
    for (int64_t c = 0; c < k; ++c) ids.push_back(std::to_string(c));
    return ids;
  }
  if (int64_t(label_names.size()) != k)
    throw std::invalid_argument("ClassificationReport: " + std::to_string(label_names.size()) +
                                " label names for " + std::to_string(k) + " classes");
  return label_names;
}

std::string pad_left(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

std::string fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

// Appends one line of the table in sklearn's layout: `label` right-aligned in `w` columns and a
// space, then each cell as a space and 9 right-aligned columns (an empty cell leaves them blank).
void add_row(std::string& out, const std::string& label, size_t w,
             std::initializer_list<std::string> cells) {
  out += pad_left(label, w);
  out += ' ';
  for (const std::string& cell : cells) {
    out += ' ';
    out += pad_left(cell, 9);
  }
  out += '\n';
}

}  // namespace

ClassificationReport classification_report(const std::vector<int64_t>& y_true,
                                           const std::vector<int64_t>& y_pred,
                                           int64_t num_classes) {
  if (num_classes < 1)
    throw std::invalid_argument("classification_report: num_classes must be >= 1");
  if (y_true.size() != y_pred.size())
    throw std::invalid_argument("classification_report: " + std::to_string(y_true.size()) +
                                " true labels but " + std::to_string(y_pred.size()) +
                                " predictions");
  if (y_true.empty()) throw std::invalid_argument("classification_report: no examples");
  const auto K = size_t(num_classes);
  ClassificationReport r;
  r.num_classes = num_classes;
  r.confusion.assign(K, std::vector<int64_t>(K, 0));
  for (size_t i = 0; i < y_true.size(); ++i) {
    for (const auto& [v, what] : {std::pair{y_true[i], "y_true"}, std::pair{y_pred[i], "y_pred"}})
      if (v < 0 || v >= num_classes)
        throw std::invalid_argument("classification_report: " + std::string(what) + "[" +
                                    std::to_string(i) + "] = " + std::to_string(v) +
                                    " is outside [0, " + std::to_string(num_classes) + ")");
    ++r.confusion[size_t(y_true[i])][size_t(y_pred[i])];
  }

  int64_t correct = 0;
  for (size_t c = 0; c < K; ++c) {
    const int64_t tp = r.confusion[c][c];
    int64_t predicted = 0, actual = 0;
    for (size_t o = 0; o < K; ++o) {
      predicted += r.confusion[o][c];
      actual += r.confusion[c][o];
    }
    correct += tp;
    r.support.push_back(actual);
    r.precision.push_back(ratio(tp, predicted));
    r.recall.push_back(ratio(tp, actual));
    // 2tp / (2tp + fp + fn) = 2tp / (predicted + actual) is the harmonic mean of precision and
    // recall, computed from counts as recent scikit-learn does (no rounding through the two
    // ratios).
    r.f1.push_back(ratio(2 * tp, predicted + actual));
  }
  r.accuracy = ratio(correct, int64_t(y_true.size()));
  r.macro_f1 = mean(r.f1);
  return r;
}

std::string ClassificationReport::to_text(const std::vector<std::string>& label_names) const {
  const std::vector<std::string> names = names_for(label_names, num_classes);
  const int64_t total = std::accumulate(support.begin(), support.end(), int64_t(0));
  size_t w = std::string("macro avg").size();
  for (const auto& n : names) w = std::max(w, n.size());

  std::string out;
  add_row(out, "", w, {"precision", "recall", "f1-score", "support"});
  out += '\n';
  for (size_t c = 0; c < names.size(); ++c)
    add_row(out, names[c], w,
            {fixed(precision[c]), fixed(recall[c]), fixed(f1[c]), std::to_string(support[c])});
  out += '\n';
  add_row(out, "accuracy", w, {"", "", fixed(accuracy), std::to_string(total)});
  add_row(out, "macro avg", w,
          {fixed(mean(precision)), fixed(mean(recall)), fixed(macro_f1), std::to_string(total)});

  // The confusion matrix: each column as wide as its name or its largest count.
  out += "\nconfusion matrix (rows: true label, columns: predicted label)\n";
  out += pad_left("", w);
  std::vector<size_t> cw(names.size());
  for (size_t p = 0; p < names.size(); ++p) {
    cw[p] = names[p].size();
    for (size_t t = 0; t < names.size(); ++t)
      cw[p] = std::max(cw[p], std::to_string(confusion[t][p]).size());
    out += pad_left(names[p], cw[p] + 2);
  }
  out += "\n";
  for (size_t t = 0; t < names.size(); ++t) {
    out += pad_left(names[t], w);
    for (size_t p = 0; p < names.size(); ++p)
      out += pad_left(std::to_string(confusion[t][p]), cw[p] + 2);
    out += "\n";
  }
  return out;
}

nlohmann::json ClassificationReport::to_json(const std::vector<std::string>& label_names) const {
  const std::vector<std::string> names = names_for(label_names, num_classes);
  nlohmann::json classes = nlohmann::json::array();
  for (size_t c = 0; c < names.size(); ++c)
    classes.push_back({{"label", names[c]},
                       {"precision", precision[c]},
                       {"recall", recall[c]},
                       {"f1", f1[c]},
                       {"support", support[c]}});
  return {{"num_classes", num_classes},
          {"examples", std::accumulate(support.begin(), support.end(), int64_t(0))},
          {"accuracy", accuracy},
          {"macro_f1", macro_f1},
          {"classes", classes},
          {"labels", names},
          {"confusion", confusion}};
}

}  // namespace hone
