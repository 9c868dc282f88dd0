// Image-classification fine-tuning of a ResNet: pre-trained weights (torchvision .pth, the
// legacy CIFAR .th files, safetensors) or random init, a new head for the task's classes, image
// data from idx / CIFAR binaries / a folder per class / CSV pixel rows, augmentation, and the
// techniques of the Trainer (frozen backbone with BatchNorm in eval, staged unfreezing, ...).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/core/random.h"
#include "engine/data/image_dataset.h"
#include "engine/train/image_classification_task.h"
#include "models/resnet/resnet_loader.h"
#include "tools/finetune_tasks.h"
#include "tools/recipe_common.h"

namespace fs = std::filesystem;

namespace hone::cli {

namespace {

using T = RecipeField::Type;

std::vector<RecipeField> image_schema() {
  std::vector<RecipeField> s = common_recipe_fields();
  s.insert(s.end(), {
      {"weights", T::String, "", "pre-trained weights (.pth, .th, .safetensors); with init=pretrained"},
      {"stem", T::String, "", "torchvision nets: imagenet or cifar (default: the architecture's own)"},
      {"data.format", T::String, "idx", "idx, cifar, folder or csv"},
      {"data.train", T::String, "", "idx: images file; cifar: comma-separated batch files; folder: root; csv: file", true},
      {"data.train_labels", T::String, "", "idx: the labels file"},
      {"data.test", T::String, "", "held-out images (same format)"},
      {"data.test_labels", T::String, "", "idx: the held-out labels file"},
      {"data.height", T::Int, "0", "folder/csv: image height"},
      {"data.width", T::Int, "0", "folder/csv: image width"},
      {"data.channels", T::Int, "3", "folder/csv: channels to decode to"},
      {"data.max_value", T::Float, "255", "csv: the largest pixel value (16 for sklearn digits)"},
      {"data.class_names", T::String, "", "comma-separated names, or 'fashion' for Fashion-MNIST's"},
      {"data.train_limit", T::Int, "0", "use only the first N training images (0: all)"},
      {"data.test_limit", T::Int, "0", "evaluate on only the first N held-out images (0: all)"},
      {"transform.pad", T::Int, "0", "zero padding on each side (28x28 -> 32x32 with 2)"},
      {"transform.repeat_channels", T::Int, "0", "1-channel images -> this many channels"},
      {"transform.crop_padding", T::Int, "0", "random crop after this much padding (CIFAR-style: 4)"},
      {"transform.hflip", T::Bool, "false", "random horizontal flips"},
      {"transform.mean", T::String, "", "comma-separated per-channel mean of pixel/255"},
      {"transform.std", T::String, "", "comma-separated per-channel std"},
      {"label_smoothing", T::Float, "0.0", "label smoothing of the cross-entropy"},
      {"epochs", T::Float, "0", "if > 0, sets steps to cover this many passes over train"},
  });
  return s;
}

std::vector<float> floats(const std::string& text, const std::string& key) {
  std::vector<float> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      out.push_back(std::stof(item));
    } catch (const std::exception&) {
      throw std::invalid_argument(key + ": '" + item + "' is not a number");
    }
  }
  return out;
}

data::ImageDataset limit(data::ImageDataset d, int64_t n) {
  if (n <= 0 || n >= d.size()) return d;
  d.images = d.images.narrow(0, 0, n).contiguous();
  d.labels.resize(size_t(n));
  return d;
}

data::ImageDataset read_images(const Recipe& r, const std::string& images, const std::string& labels) {
  const std::string f = r.get_string("data.format");
  if (f == "idx") {
    if (labels.empty()) throw std::invalid_argument(r.source() + ": data.format idx needs a labels file for " + images);
    return data::read_idx(images, labels);
  }
  if (f == "cifar") {
    std::vector<std::string> files;
    std::stringstream ss(images);
    for (std::string p; std::getline(ss, p, ',');) files.push_back(p);
    return data::read_cifar_binary(files, 10);
  }
  if (f == "folder")
    return data::read_image_folder(images, r.get_int("data.height"), r.get_int("data.width"), int(r.get_int("data.channels")));
  if (f == "csv")
    return data::read_pixel_csv(images, r.get_int("data.height"), r.get_int("data.width"), int(r.get_int("data.channels")),
                                "label", r.get_float("data.max_value"));
  throw std::invalid_argument(r.source() + ": data.format must be idx, cifar, folder or csv, got '" + f + "'");
}

}  // namespace

int finetune_image(const std::string& recipe_path, const std::vector<std::string>& overrides) {
  const Recipe r = Recipe::load(recipe_path, image_schema(), overrides);
  check_runtime_keys(r);
  TrainerOptions o = trainer_options(r);
  manual_seed(o.seed);

  data::ImageDataset train = limit(read_images(r, r.get_string("data.train"), r.get_string("data.train_labels")),
                                   r.get_int("data.train_limit"));
  data::ImageDataset test;
  if (r.has("data.test"))
    test = limit(read_images(r, r.get_string("data.test"), r.get_string("data.test_labels")), r.get_int("data.test_limit"));
  if (r.get_string("data.class_names") == "fashion") {
    train.class_names = test.class_names = data::fashion_mnist_class_names();
  } else if (r.has("data.class_names")) {
    std::vector<std::string> names;
    std::stringstream ss(r.get_string("data.class_names"));
    for (std::string n; std::getline(ss, n, ',');) names.push_back(n);
    train.class_names = test.class_names = names;
  }
  if (test.size() > 0 && test.num_classes() < train.num_classes()) test.class_names = train.class_names;
  const int64_t classes = train.num_classes();

  data::ImageTransform tt;
  tt.pad = r.get_int("transform.pad");
  tt.repeat_channels = int(r.get_int("transform.repeat_channels"));
  tt.mean = floats(r.get_string("transform.mean"), "transform.mean");
  tt.std = floats(r.get_string("transform.std"), "transform.std");
  data::ImageTransform et = tt;
  const int64_t cp = r.get_int("transform.crop_padding");
  if (cp > 0) {
    const Shape shape = data::transformed_shape(tt, train.channels(), train.height(), train.width(), false);
    tt.crop_padding = cp;
    tt.crop_h = shape[1];
    tt.crop_w = shape[2];
  }
  tt.hflip = r.get_bool("transform.hflip");

  // The model: an architecture name, pre-trained weights or random init, a head for our classes.
  models::ResNetConfig cfg = models::ResNetConfig::from_name(r.get_string("model"), classes);
  if (r.has("stem")) cfg.stem = r.get_string("stem");
  std::shared_ptr<models::ResNet> model;
  std::string load_summary = "random initialisation";
  if (r.get_string("init") == "pretrained") {
    if (!r.has("weights")) throw std::invalid_argument(r.source() + ": init=pretrained needs 'weights'");
    auto loaded = models::load_resnet(r.get_string("weights"), cfg, classes, o.seed);
    model = loaded.model;
    load_summary = loaded.report.summary();
  } else if (r.get_string("init") == "random") {
    model = std::make_shared<models::ResNet>(cfg, o.seed);
  } else {
    throw std::invalid_argument(r.source() + ": init must be pretrained or random");
  }
  const int64_t batch = r.get_int("batch_size");
  const double steps_per_epoch = double(train.size()) / double(batch * o.grad_accum);
  if (r.get_float("epochs") > 0) {
    o.steps = std::max<int64_t>(1, int64_t(std::ceil(r.get_float("epochs") * steps_per_epoch)));
    if (o.warmup_steps > o.steps) o.warmup_steps = o.steps;
  }
  if (r.get_float("freeze.unfreeze_every_epochs") > 0)
    o.unfreeze_every = std::max<int64_t>(1, int64_t(std::llround(r.get_float("freeze.unfreeze_every_epochs") * steps_per_epoch)));
  std::printf("model: %s (%.2fM parameters): %s\n", cfg.arch.c_str(), double(model->parameter_count()) / 1e6,
              load_summary.c_str());
  std::printf("data: %ld train, %ld held-out images of %ldx%ldx%ld, %ld classes\n", long(train.size()), long(test.size()),
              long(train.channels()), long(train.height()), long(train.width()), long(classes));

  const nn::LoraConfig lora = apply_lora(r, *model);
  if (lora.rank > 0)  // the task's head must train (PEFT's modules_to_save)
    for (auto& [n, p] : model->named_parameters())
      if (n.rfind(model->head_name() + ".", 0) == 0) p.requires_grad_(true);
  if (g_inspect_trainable_only) {
    print_trainable(*model, o);
    return 0;
  }
  fs::create_directories(o.out_dir);
  write_text(o.out_dir, "recipe.yaml", r.to_yaml());
  write_text(o.out_dir, "hone.json",
             nlohmann::json{{"task", "image_classification"}, {"arch", cfg.arch}, {"stem", cfg.stem},
                            {"classes", train.class_names}, {"lora", lora_json(lora)}}
                 .dump(2));
  ImageClassificationTask task(*model, [model](const Tensor& x) { return model->forward(x); }, train, test, tt, et, batch,
                               r.get_float("label_smoothing"), o.seed);
  move_to_run_device(*model, r);
  Trainer trainer(task, o);
  if (!o.resume && test.size() > 0) {
    model->eval();
    const auto m = task.evaluate();
    std::printf("held-out before fine-tuning: accuracy %.2f%%, loss %.4f\n", 100 * m.at("accuracy"), m.at("loss"));
  }
  const TrainSummary s = trainer.run();
  if (s.steps_done < o.steps && !s.stopped_early) {
    std::printf("stopped after step %ld of %ld; continue with resume=true\n", long(s.steps_done), long(o.steps));
    return 0;
  }
  if (s.final_eval.count("accuracy")) {
    std::printf("held-out after fine-tuning: accuracy %.2f%%, macro-F1 %.4f, loss %.4f\n%s", 100 * s.final_eval.at("accuracy"),
                s.final_eval.at("macro_f1"), s.final_eval.at("loss"), task.last_report().c_str());
    write_text(o.out_dir, "eval_report.txt", task.last_report());
  }
  save_adapters_if_any(lora, *model, o.out_dir);
  std::printf("run folder: %s\n", o.out_dir.c_str());
  return 0;
}

}  // namespace hone::cli
