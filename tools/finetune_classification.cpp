// Sequence-classification fine-tuning of a BERT-family encoder (e.g. all-MiniLM-L6-v2 for
// sentiment): labelled CSV/TSV/JSONL, WordPiece, a classification head, accuracy and macro-F1.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/core/random.h"
#include "engine/data/labeled_text.h"
#include "engine/data/wordpiece_tokenizer.h"
#include "engine/train/classification_task.h"
#include "tools/finetune_tasks.h"
#include "tools/model_source.h"
#include "tools/recipe_common.h"

namespace fs = std::filesystem;

namespace hone::cli {

namespace {

using T = RecipeField::Type;

std::vector<RecipeField> classification_schema() {
  std::vector<RecipeField> s = common_recipe_fields();
  s.insert(s.end(), {
      {"data.train", T::String, "", "CSV, TSV or JSONL of labelled texts", true},
      {"data.val", T::String, "", "held-out file for evaluation during training (default: split from train)"},
      {"data.test", T::String, "", "test file evaluated once at the end"},
      {"data.format", T::String, "", "csv, tsv or jsonl (default: from the file extension)"},
      {"data.text_column", T::String, "text", "column (or JSONL field) with the text"},
      {"data.text_pair_column", T::String, "", "optional second text (sentence pairs)"},
      {"data.label_column", T::String, "label", "column with the label (names or integers)"},
      {"data.has_header", T::Bool, "true", "CSV/TSV files start with a header line"},
      {"data.val_fraction", T::Float, "0.1", "share of train held out when data.val is not given"},
      {"max_length", T::Int, "128", "tokens per example after truncation, [CLS] and [SEP] included"},
      {"pooling", T::String, "cls", "cls (BERT's pooler) or mean (masked mean, as sentence-transformers)"},
      {"label_smoothing", T::Float, "0.0", "label smoothing of the cross-entropy"},
      {"epochs", T::Float, "0", "if > 0, sets steps to cover this many passes over train"},
  });
  return s;
}

data::LabeledTextOptions text_options(const Recipe& r, const std::vector<std::string>& labels) {
  data::LabeledTextOptions o;
  o.text_column = r.get_string("data.text_column");
  o.text_pair_column = r.get_string("data.text_pair_column");
  o.label_column = r.get_string("data.label_column");
  o.has_header = r.get_bool("data.has_header");
  o.format = r.get_string("data.format");
  o.label_names = labels;
  return o;
}

std::vector<TokenizedExample> encode_all(const data::LabeledDataset& d, const WordPieceTokenizer& tok, int64_t max_len) {
  std::vector<TokenizedExample> out;
  out.reserve(d.examples.size());
  for (const auto& e : d.examples) {
    const bool pair = !e.text_pair.empty();
    const Encoding enc = tok.encode(e.text, e.text_pair, max_len, pair);
    out.push_back({enc.ids, enc.token_type_ids, e.label});
  }
  return out;
}

void print_eval(const char* title, const std::map<std::string, double>& m) {
  if (m.empty()) return;
  std::printf("%s: accuracy %.2f%%, macro-F1 %.4f, loss %.4f\n", title, 100 * m.at("accuracy"), m.at("macro_f1"),
              m.at("loss"));
}

}  // namespace

int finetune_classification(const std::string& recipe_path, const std::vector<std::string>& overrides) {
  const Recipe r = Recipe::load(recipe_path, classification_schema(), overrides);
  check_runtime_keys(r);
  TrainerOptions o = trainer_options(r);
  const std::string out_dir = o.out_dir, model_dir = r.get_string("model");
  const std::string tok_dir = r.has("tokenizer") ? r.get_string("tokenizer") : model_dir;
  const std::string pooling = r.get_string("pooling");
  if (pooling != "cls" && pooling != "mean")
    throw std::invalid_argument(r.source() + ": pooling must be cls or mean, got '" + pooling + "'");
  const int64_t max_len = r.get_int("max_length");
  if (max_len < 2) throw std::invalid_argument(r.source() + ": max_length must be >= 2");
  manual_seed(o.seed);

  // Data: train, then val/test read with train's label names so ids agree.
  data::LabeledDataset train = data::read_labeled_text(r.get_string("data.train"), text_options(r, {}));
  data::LabeledDataset val;
  if (r.has("data.val")) {
    val = data::read_labeled_text(r.get_string("data.val"), text_options(r, train.label_names));
  } else {
    auto [tr, va] = data::split_dataset(train, r.get_float("data.val_fraction"), o.seed, true);
    train = std::move(tr);
    val = std::move(va);
  }
  data::LabeledDataset test;
  if (r.has("data.test")) test = data::read_labeled_text(r.get_string("data.test"), text_options(r, train.label_names));
  const std::vector<std::string> labels = train.label_names;

  const WordPieceTokenizer tok = WordPieceTokenizer::from_folder(tok_dir);
  models::BertLoadOptions lo;
  lo.pooling = pooling == "mean" ? models::BertPooling::Mean : models::BertPooling::Cls;
  lo.labels = labels;
  lo.seed = o.seed;
  lo.random_init = r.get_string("init") == "random";
  lo.dropout = r.get_float("dropout");
  if (r.get_string("init") != "pretrained" && r.get_string("init") != "random")
    throw std::invalid_argument(r.source() + ": init must be pretrained or random");
  models::LoadedBert loaded = models::load_bert_classifier(model_dir, lo);
  auto model = loaded.model;
  std::printf("model: %s (%ld layers, hidden %ld, %.1fM parameters): %s\n", model_dir.c_str(),
              long(model->config().num_hidden_layers), long(model->config().hidden_size),
              double(model->parameter_count()) / 1e6, loaded.report.summary().c_str());

  std::vector<TokenizedExample> train_ex = encode_all(train, tok, max_len), val_ex = encode_all(val, tok, max_len),
                                test_ex = encode_all(test, tok, max_len);
  std::printf("data: %zu train, %zu val, %zu test examples; labels:", train_ex.size(), val_ex.size(), test_ex.size());
  for (const auto& l : labels) std::printf(" %s", l.c_str());
  std::printf("\n");
  const int64_t batch = r.get_int("batch_size");
  const double steps_per_epoch = double(train_ex.size()) / double(batch * o.grad_accum);
  if (r.get_float("epochs") > 0) {
    o.steps = std::max<int64_t>(1, int64_t(std::ceil(r.get_float("epochs") * steps_per_epoch)));
    if (o.warmup_steps > o.steps) o.warmup_steps = o.steps;
  }
  if (r.get_float("freeze.unfreeze_every_epochs") > 0)
    o.unfreeze_every = std::max<int64_t>(1, int64_t(std::llround(r.get_float("freeze.unfreeze_every_epochs") * steps_per_epoch)));

  const nn::LoraConfig lora = apply_lora(r, *model);
  if (lora.rank > 0)  // a new head must train (PEFT's modules_to_save)
    for (auto& [n, p] : model->named_parameters())
      if (n.rfind("classifier.", 0) == 0) p.requires_grad_(true);
  if (g_inspect_trainable_only) {
    print_trainable(*model, o);
    return 0;
  }
  fs::create_directories(out_dir);
  write_text(out_dir, "config.json", model->config().to_json());
  write_text(out_dir, "recipe.yaml", r.to_yaml());
  write_text(out_dir, "hone.json",
             nlohmann::json{{"task", "sequence_classification"}, {"pooling", pooling}, {"labels", labels},
                            {"max_length", max_len}, {"lora", lora_json(lora)}}
                 .dump(2));
  copy_tokenizer_files(tok_dir, out_dir);

  const auto logits = [model](const Tensor& ids, const Tensor& types, const Tensor& mask) {
    return model->logits({ids, types, mask});
  };
  ClassificationTask task(*model, logits, train_ex, val_ex, labels, batch, tok.pad_id(), r.get_float("label_smoothing"),
                          o.seed);
  if (!o.resume) std::filesystem::remove(fs::path(out_dir) / "eval_reports.jsonl");
  task.set_report_log((fs::path(out_dir) / "eval_reports.jsonl").string());
  move_to_run_device(*model, r);
  Trainer trainer(task, o);
  if (!o.resume) {
    model->eval();
    print_eval("held-out before fine-tuning", task.evaluate());
  }
  const TrainSummary s = trainer.run();
  if (s.steps_done < o.steps && !s.stopped_early) {
    std::printf("stopped after step %ld of %ld; continue with resume=true\n", long(s.steps_done), long(o.steps));
    return 0;
  }
  print_eval("held-out after fine-tuning ", s.final_eval);
  save_adapters_if_any(lora, *model, out_dir);
  std::printf("%s", task.last_report().c_str());
  write_text(out_dir, "eval_report.txt", task.last_report());
  if (!test_ex.empty()) {
    ClassificationTask test_task(*model, logits, train_ex, test_ex, labels, batch, tok.pad_id(), 0.0, o.seed);
    model->eval();
    const auto m = test_task.evaluate();
    print_eval("test", m);
    std::printf("%s", test_task.last_report().c_str());
    write_text(out_dir, "test_report.txt", test_task.last_report());
    write_text(out_dir, "test_report.json", test_task.last_report_json());
  }
  std::printf("run folder: %s (metrics.jsonl, eval_reports.jsonl, checkpoints/, eval_report.txt; usable as --model)\n",
              out_dir.c_str());
  return 0;
}

}  // namespace hone::cli
