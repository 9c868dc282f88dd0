#include "engine/train/classification_task.h"

#include <algorithm>
#include <fstream>

#include "engine/autograd/grad_mode.h"
#include "engine/data/labeled_text.h"
#include "engine/ops/ops.h"
#include "engine/train/metrics.h"

namespace hone {

struct ClassificationTask::Sampler {
  data::ExampleSampler s;
};

PaddedBatch pad_examples(const std::vector<const TokenizedExample*>& ex, int32_t pad_id) {
  const int64_t B = int64_t(ex.size());
  int64_t T = 1;
  for (const TokenizedExample* e : ex) T = std::max<int64_t>(T, int64_t(e->ids.size()));
  std::vector<int64_t> ids(B * T, pad_id), types(B * T, 0), mask(B * T, 0), labels(B);
  for (int64_t b = 0; b < B; ++b) {
    const TokenizedExample& e = *ex[b];
    for (size_t t = 0; t < e.ids.size(); ++t) {
      ids[b * T + t] = e.ids[t];
      types[b * T + t] = t < e.token_types.size() ? e.token_types[t] : 0;
      mask[b * T + t] = 1;
    }
    labels[b] = e.label;
  }
  PaddedBatch p;
  p.input_ids = Tensor::from_vector(ids, {B, T});
  p.token_type_ids = Tensor::from_vector(types, {B, T});
  p.attention_mask = Tensor::from_vector(mask, {B, T});
  p.labels = Tensor::from_vector(labels, {B});
  return p;
}

ClassificationTask::ClassificationTask(nn::Module& model, LogitsFn logits, std::vector<TokenizedExample> train,
                                       std::vector<TokenizedExample> eval, std::vector<std::string> label_names,
                                       int64_t batch_size, int32_t pad_id, double label_smoothing, uint64_t seed)
    : model_(model), logits_(std::move(logits)), train_(std::move(train)), eval_(std::move(eval)),
      labels_(std::move(label_names)), batch_size_(batch_size), pad_id_(pad_id), label_smoothing_(label_smoothing),
      sampler_(std::make_unique<Sampler>(Sampler{data::ExampleSampler(int64_t(train_.size()), seed, true)})) {
  if (train_.empty()) throw std::invalid_argument("classification: no training examples");
}

ClassificationTask::~ClassificationTask() = default;

TrainBatch ClassificationTask::next_batch() {
  const std::vector<int64_t> idx = sampler_->s.next_batch(batch_size_);
  std::vector<const TokenizedExample*> ex;
  for (int64_t i : idx) ex.push_back(&train_[i]);
  PaddedBatch p = pad_examples(ex, pad_id_);
  TrainBatch b;
  b.inputs = p.input_ids;
  b.targets = p.labels;
  b.aux = {p.token_type_ids, p.attention_mask};
  b.count = int64_t(ex.size());
  b.work = b.count;
  return b;
}

Tensor ClassificationTask::mean_loss(const TrainBatch& b) {
  const Tensor logits = logits_(b.inputs, b.aux[0], b.aux[1]);
  return ops::cross_entropy(logits, b.targets.to(logits.device()), -100, label_smoothing_);
}

void ClassificationTask::predict(const std::vector<TokenizedExample>& examples, std::vector<int64_t>& labels,
                                 Tensor& probabilities) {
  NoGradGuard no_grad;
  const int64_t K = int64_t(labels_.size()), N = int64_t(examples.size());
  labels.assign(N, 0);
  probabilities = Tensor::zeros({N, K});
  // Sort by length so each batch pads little; results go back to the original order.
  std::vector<int64_t> order(N);
  for (int64_t i = 0; i < N; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return examples[a].ids.size() < examples[b].ids.size(); });
  const int64_t eval_batch = std::max<int64_t>(batch_size_, 32);
  for (int64_t s = 0; s < N; s += eval_batch) {
    std::vector<const TokenizedExample*> ex;
    for (int64_t i = s; i < std::min(N, s + eval_batch); ++i) ex.push_back(&examples[order[i]]);
    const PaddedBatch p = pad_examples(ex, pad_id_);
    const Tensor probs = ops::softmax(logits_(p.input_ids, p.token_type_ids, p.attention_mask), -1);
    // One read of the batch's probabilities (on a GPU: one copy to the host per batch).
    const std::vector<float> pv = probs.to_vector<float>();
    float* out = probabilities.data<float>();
    for (size_t r = 0; r < ex.size(); ++r) {
      const int64_t i = order[s + int64_t(r)];
      std::copy(pv.begin() + r * K, pv.begin() + (r + 1) * K, out + i * K);
      labels[i] = int64_t(std::max_element(pv.begin() + r * K, pv.begin() + (r + 1) * K) - (pv.begin() + r * K));
    }
  }
}

std::map<std::string, double> ClassificationTask::evaluate() {
  if (eval_.empty()) return {};
  std::vector<int64_t> pred;
  Tensor probs;
  predict(eval_, pred, probs);
  std::vector<int64_t> truth;
  double nll = 0;
  const std::vector<float> pv = probs.to_vector<float>();
  const int64_t K = int64_t(labels_.size());
  for (size_t i = 0; i < eval_.size(); ++i) {
    truth.push_back(eval_[i].label);
    nll -= std::log(std::max(1e-12f, pv[i * K + eval_[i].label]));
  }
  const ClassificationReport r = classification_report(truth, pred, K);
  last_report_ = r.to_text(labels_);
  last_report_json_ = r.to_json(labels_).dump();
  if (!report_log_.empty()) {
    std::ofstream log(report_log_, std::ios::app);
    log << "{\"evaluation\": " << ++evaluations_ << ", \"report\": " << last_report_json_ << "}\n";
  }
  return {{"loss", nll / double(eval_.size())}, {"accuracy", r.accuracy}, {"macro_f1", r.macro_f1}};
}

int64_t ClassificationTask::data_position() const { return sampler_->s.position(); }
void ClassificationTask::restore_data_position(int64_t p) { sampler_->s.restore(p); }

}  // namespace hone
