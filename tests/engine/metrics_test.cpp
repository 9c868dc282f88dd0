// classification_report against scikit-learn 1.9.1. Expected values were printed by
//   from sklearn.metrics import precision_recall_fscore_support, accuracy_score, f1_score
//   precision_recall_fscore_support(t, p, labels=range(K), zero_division=0)
//   f1_score(t, p, labels=range(K), average='macro', zero_division=0); accuracy_score(t, p)
// for the label vectors below.
#include "engine/train/metrics.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace hone {
namespace {

// sklearn's numbers for one class.
struct ClassRow {
  double precision, recall, f1;
  int64_t support;
};

// One row per class rather than one vector per metric: besides reading like sklearn's table, it
// avoids a GCC 12.2 miscompilation seen with -O2 -mavx512f (SLP vectorizer), where an aggregate of
// several std::vector<double> brace-initialised from literals got one vector filled wrongly.
void expect_report(const std::vector<int64_t>& t, const std::vector<int64_t>& p, int64_t k,
                   double accuracy, double macro_f1, const std::vector<ClassRow>& rows,
                   const std::vector<std::vector<int64_t>>& confusion) {
  const ClassificationReport r = classification_report(t, p, k);
  EXPECT_EQ(r.num_classes, k);
  EXPECT_DOUBLE_EQ(r.accuracy, accuracy);
  EXPECT_DOUBLE_EQ(r.macro_f1, macro_f1);
  ASSERT_EQ(rows.size(), size_t(k));
  ASSERT_EQ(r.precision.size(), size_t(k));
  ASSERT_EQ(r.recall.size(), size_t(k));
  ASSERT_EQ(r.f1.size(), size_t(k));
  ASSERT_EQ(r.support.size(), size_t(k));
  for (size_t c = 0; c < rows.size(); ++c) {
    SCOPED_TRACE("class " + std::to_string(c));
    EXPECT_DOUBLE_EQ(r.precision[c], rows[c].precision);
    EXPECT_DOUBLE_EQ(r.recall[c], rows[c].recall);
    EXPECT_DOUBLE_EQ(r.f1[c], rows[c].f1);
    EXPECT_EQ(r.support[c], rows[c].support);
  }
  EXPECT_EQ(r.confusion, confusion);
}

TEST(Metrics, ThreeClassesAllPredicted) {
  expect_report({0, 1, 2, 2, 1, 0, 2, 1}, {0, 2, 2, 2, 1, 0, 1, 0}, 3, 0.625, 0.6222222222222222,
                {{0.6666666666666666, 1.0, 0.8, 2},
                 {0.5, 0.3333333333333333, 0.4, 3},
                 {0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 3}},
                {{2, 0, 0}, {1, 1, 1}, {0, 1, 2}});
}

TEST(Metrics, ClassNeverPredictedHasZeroPrecision) {
  // Class 2 is present twice but never predicted: precision 0 (zero_division=0), recall 0.
  expect_report({0, 0, 1, 1, 2, 2}, {0, 1, 1, 1, 0, 1}, 3, 0.5, 0.38888888888888884,
                {{0.5, 0.5, 0.5, 2}, {0.5, 1.0, 0.6666666666666666, 2}, {0.0, 0.0, 0.0, 2}},
                {{1, 1, 0}, {0, 2, 0}, {1, 1, 0}});
}

TEST(Metrics, AbsentClassStillCountsInMacroF1) {
  // Class 3 is neither present nor predicted: f1 0, and macro-F1 averages over all 4 classes.
  expect_report({0, 1, 2, 0}, {0, 1, 1, 0}, 4, 0.75, 0.41666666666666663,
                {{1.0, 1.0, 1.0, 2},
                 {0.5, 1.0, 0.6666666666666666, 1},
                 {0.0, 0.0, 0.0, 1},
                 {0.0, 0.0, 0.0, 0}},
                {{2, 0, 0, 0}, {0, 1, 0, 0}, {0, 1, 0, 0}, {0, 0, 0, 0}});
}

TEST(Metrics, PredictedClassWithoutSupport) {
  // Class 2 is predicted once but never true: precision 0/1, recall 0 (no support).
  expect_report({0, 0, 1}, {0, 2, 1}, 3, 0.6666666666666666, 0.5555555555555555,
                {{1.0, 0.5, 0.6666666666666666, 2}, {1.0, 1.0, 1.0, 1}, {0.0, 0.0, 0.0, 0}},
                {{1, 0, 1}, {0, 1, 0}, {0, 0, 0}});
}

TEST(Metrics, TextMatchesSklearnLayout) {
  const ClassificationReport r =
      classification_report({0, 1, 2, 2, 1, 0, 2, 1}, {0, 2, 2, 2, 1, 0, 1, 0}, 3);
  const std::string text = r.to_text({"neg", "neu", "pos"});
  // sklearn's classification_report(digits=4) prints these rows (its name column is wider).
  EXPECT_NE(text.find("      neg     0.6667    1.0000    0.8000         2\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find(" accuracy                         0.6250         8\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("macro avg     0.6111    0.6667    0.6222         8\n"), std::string::npos)
      << text;
  // Confusion matrix rows with the names.
  EXPECT_NE(text.find("confusion matrix"), std::string::npos);
  EXPECT_NE(text.find("      neg    2    0    0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("      neu    1    1    1\n"), std::string::npos) << text;
  // Without names the class ids are printed.
  EXPECT_NE(r.to_text().find("        0     0.6667"), std::string::npos) << r.to_text();
  EXPECT_THROW(r.to_text({"a", "b"}), std::invalid_argument);
}

TEST(Metrics, Json) {
  const ClassificationReport r = classification_report({0, 0, 1}, {0, 2, 1}, 3);
  const nlohmann::json j = r.to_json({"a", "b", "c"});
  EXPECT_EQ(j["num_classes"], 3);
  EXPECT_EQ(j["examples"], 3);
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(j["macro_f1"].get<double>(), 0.5555555555555555);
  ASSERT_EQ(j["classes"].size(), 3u);
  EXPECT_EQ(j["classes"][0]["label"], "a");
  EXPECT_DOUBLE_EQ(j["classes"][0]["recall"].get<double>(), 0.5);
  EXPECT_EQ(j["classes"][2]["support"], 0);
  EXPECT_EQ(j["labels"], nlohmann::json({"a", "b", "c"}));
  EXPECT_EQ(j["confusion"], nlohmann::json({{1, 0, 1}, {0, 1, 0}, {0, 0, 0}}));
}

TEST(Metrics, RejectsBadInput) {
  EXPECT_THROW(classification_report({0, 1}, {0}, 2), std::invalid_argument);
  EXPECT_THROW(classification_report({}, {}, 2), std::invalid_argument);
  EXPECT_THROW(classification_report({0}, {0}, 0), std::invalid_argument);
  try {
    classification_report({0, 1, 0}, {0, 1, 2}, 2);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("y_pred[2] = 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(classification_report({-1}, {0}, 2), std::invalid_argument);
}

}  // namespace
}  // namespace hone
