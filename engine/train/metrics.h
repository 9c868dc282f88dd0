// Classification metrics for evaluating a fine-tuned classifier: accuracy, per-class precision /
// recall / F1, macro-F1 and the confusion matrix, with scikit-learn's conventions so that numbers
// can be compared with a Python evaluation of the same predictions.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hone {

struct ClassificationReport {
  int64_t num_classes = 0;
  std::vector<std::vector<int64_t>> confusion;  // [true class][predicted class] counts
  double accuracy = 0;
  double macro_f1 = 0;                        // unweighted mean of f1 over all num_classes classes
  std::vector<double> precision, recall, f1;  // per class
  std::vector<int64_t> support;               // examples whose true class is this one

  // A table in the layout of sklearn.metrics.classification_report (per-class precision, recall,
  // f1-score and support, then accuracy and macro average), followed by the confusion matrix with
  // rows = true class, columns = predicted class. `label_names` has num_classes entries, or is
  // empty to print the class ids.
  std::string to_text(const std::vector<std::string>& label_names = {}) const;
  // {"num_classes", "examples", "accuracy", "macro_f1",
  //  "classes": [{"label", "precision", "recall", "f1", "support"}, ...],
  //  "labels": [names], "confusion": [[...], ...]}
  nlohmann::json to_json(const std::vector<std::string>& label_names = {}) const;
};

// The report for predictions `y_pred` of true labels `y_true` (same length, at least one, every
// value in [0, num_classes)); otherwise std::invalid_argument naming the first bad position.
// As scikit-learn with labels=range(num_classes) and zero_division=0: a class never predicted has
// precision 0, a class with no support recall 0, and f1 = 2 tp / (2 tp + fp + fn), 0 when the
// class is neither present nor predicted (which still counts in the macro average).
ClassificationReport classification_report(const std::vector<int64_t>& y_true,
                                           const std::vector<int64_t>& y_pred, int64_t num_classes);

}  // namespace hone
