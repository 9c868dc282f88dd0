#include "models/resnet/resnet.h"

#include <cmath>
#include <stdexcept>

namespace hone::models {

namespace {

// torchvision's BasicBlock: 3x3 (stride) -> BN -> ReLU -> 3x3 -> BN, plus the shortcut.
class BasicBlock : public ResNetBlock {
 public:
  BasicBlock(int64_t in, int64_t planes, int64_t stride, bool option_a, uint64_t seed)
      : option_a_(option_a), pad_((planes - in) / 2) {
    conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(in, planes, 3, stride, 1, false, seed));
    bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(planes));
    conv2_ = register_module("conv2", std::make_shared<nn::Conv2d>(planes, planes, 3, 1, 1, false, seed + 1));
    bn2_ = register_module("bn2", std::make_shared<nn::BatchNorm2d>(planes));
    reshape_ = stride != 1 || in != planes;
    stride_ = stride;
    if (reshape_ && !option_a) {
      auto ds = register_module("downsample", std::make_shared<Sequential>());
      down_conv_ = ds->add("0", std::make_shared<nn::Conv2d>(in, planes, 1, stride, 0, false, seed + 2));
      down_bn_ = ds->add("1", std::make_shared<nn::BatchNorm2d>(planes));
    }
  }
  Tensor forward(const Tensor& x) override {
    Tensor out = ops::relu(bn1_->forward(conv1_->forward(x)));
    out = bn2_->forward(conv2_->forward(out));
    return ops::relu(ops::add(out, shortcut(x)));
  }

 private:
  struct Sequential : nn::Module {
    template <class M>
    std::shared_ptr<M> add(const std::string& n, std::shared_ptr<M> m) {
      return register_module(n, std::move(m));
    }
  };
  Tensor shortcut(const Tensor& x) {
    if (!reshape_) return x;
    if (option_a_) return ops::pad_channels(ops::subsample2d(x, stride_), pad_, pad_);
    return down_bn_->forward(down_conv_->forward(x));
  }
  bool option_a_, reshape_ = false;
  int64_t pad_, stride_ = 1;
  std::shared_ptr<nn::Conv2d> conv1_, conv2_, down_conv_;
  std::shared_ptr<nn::BatchNorm2d> bn1_, bn2_, down_bn_;
  friend class Bottleneck;
};

// torchvision's Bottleneck (v1.5): 1x1 -> 3x3 (stride) -> 1x1 (x4 channels).
class Bottleneck : public ResNetBlock {
 public:
  Bottleneck(int64_t in, int64_t planes, int64_t stride, uint64_t seed) {
    const int64_t out = planes * 4;
    conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(in, planes, 1, 1, 0, false, seed));
    bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(planes));
    conv2_ = register_module("conv2", std::make_shared<nn::Conv2d>(planes, planes, 3, stride, 1, false, seed + 1));
    bn2_ = register_module("bn2", std::make_shared<nn::BatchNorm2d>(planes));
    conv3_ = register_module("conv3", std::make_shared<nn::Conv2d>(planes, out, 1, 1, 0, false, seed + 2));
    bn3_ = register_module("bn3", std::make_shared<nn::BatchNorm2d>(out));
    if (stride != 1 || in != out) {
      auto ds = register_module("downsample", std::make_shared<BasicBlock::Sequential>());
      down_conv_ = ds->add("0", std::make_shared<nn::Conv2d>(in, out, 1, stride, 0, false, seed + 3));
      down_bn_ = ds->add("1", std::make_shared<nn::BatchNorm2d>(out));
    }
  }
  Tensor forward(const Tensor& x) override {
    Tensor out = ops::relu(bn1_->forward(conv1_->forward(x)));
    out = ops::relu(bn2_->forward(conv2_->forward(out)));
    out = bn3_->forward(conv3_->forward(out));
    const Tensor identity = down_conv_ ? down_bn_->forward(down_conv_->forward(x)) : x;
    return ops::relu(ops::add(out, identity));
  }

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_, conv3_, down_conv_;
  std::shared_ptr<nn::BatchNorm2d> bn1_, bn2_, bn3_, down_bn_;
};

struct Stage : nn::Module {
  template <class M>
  std::shared_ptr<M> add(const std::string& n, std::shared_ptr<M> m) {
    return register_module(n, std::move(m));
  }
};

}  // namespace

bool ResNetConfig::cifar_style() const {
  return arch == "resnet20" || arch == "resnet32" || arch == "resnet44" || arch == "resnet56";
}

ResNetConfig ResNetConfig::from_name(const std::string& arch, int64_t num_classes) {
  static const char* known[] = {"resnet18", "resnet34", "resnet50", "resnet20", "resnet32", "resnet44", "resnet56"};
  for (const char* k : known)
    if (arch == k) {
      ResNetConfig c;
      c.arch = arch;
      c.num_classes = num_classes;
      if (c.cifar_style()) c.stem = "cifar";
      return c;
    }
  throw std::invalid_argument("unknown ResNet '" + arch +
                              "' (resnet18, resnet34, resnet50, resnet20, resnet32, resnet44, resnet56)");
}

ResNet::ResNet(const ResNetConfig& c, uint64_t seed) : config_(c) {
  if (c.num_classes < 1) throw std::invalid_argument("ResNet: num_classes must be positive");
  if (c.stem != "imagenet" && c.stem != "cifar") throw std::invalid_argument("ResNet: stem must be imagenet or cifar");
  std::vector<int64_t> blocks, widths;
  bool bottleneck = false;
  if (c.cifar_style()) {
    const int64_t n = c.arch == "resnet20" ? 3 : c.arch == "resnet32" ? 5 : c.arch == "resnet44" ? 7 : 9;
    blocks = {n, n, n};
    widths = {16, 32, 64};
  } else {
    widths = {64, 128, 256, 512};
    if (c.arch == "resnet18") blocks = {2, 2, 2, 2};
    else if (c.arch == "resnet34") blocks = {3, 4, 6, 3};
    else if (c.arch == "resnet50") blocks = {3, 4, 6, 3}, bottleneck = true;
    else throw std::invalid_argument("unknown ResNet '" + c.arch + "'");
  }
  const bool cifar_stem = c.stem == "cifar";
  const int64_t stem_out = c.cifar_style() ? 16 : 64;
  conv1_ = register_module("conv1", cifar_stem ? std::make_shared<nn::Conv2d>(3, stem_out, 3, 1, 1, false, seed)
                                               : std::make_shared<nn::Conv2d>(3, stem_out, 7, 2, 3, false, seed));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(stem_out));
  int64_t in = stem_out;
  uint64_t s = seed + 10;
  for (size_t st = 0; st < blocks.size(); ++st) {
    auto stage = register_module("layer" + std::to_string(st + 1), std::make_shared<Stage>());
    std::vector<std::shared_ptr<ResNetBlock>> list;
    for (int64_t b = 0; b < blocks[st]; ++b) {
      const int64_t stride = (b == 0 && st > 0) ? 2 : 1;
      std::shared_ptr<ResNetBlock> block;
      if (bottleneck) {
        block = std::make_shared<Bottleneck>(in, widths[st], stride, s);
        in = widths[st] * 4;
      } else {
        block = std::make_shared<BasicBlock>(in, widths[st], stride, c.cifar_style(), s);
        in = widths[st];
      }
      s += 10;
      list.push_back(stage->add(std::to_string(b), block));
    }
    stages_.push_back(list);
  }
  feature_dim_ = in;
  head_name_ = c.cifar_style() ? "linear" : "fc";
  // torch.nn.Linear's default init: U(-1/sqrt(in), 1/sqrt(in)); N(0, 1/sqrt(3 in)) has the same variance.
  head_ = register_module(head_name_, std::make_shared<nn::Linear>(in, c.num_classes, true, 1.0 / std::sqrt(3.0 * in), s));
}

Tensor ResNet::forward(const Tensor& x_in) {
  const Tensor x = x_in.to(device());  // images follow the weights
  if (x.dim() != 4 || x.size(1) != 3)
    throw std::invalid_argument("ResNet: expected images [N, 3, H, W], got " + x.str());
  Tensor h = ops::relu(bn1_->forward(conv1_->forward(x)));
  if (config_.stem == "imagenet") {
    ops::Pool2dArgs p;
    p.kernel_h = p.kernel_w = 3;
    p.stride_h = p.stride_w = 2;
    p.pad_h = p.pad_w = 1;
    h = ops::max_pool2d(h, p);
  }
  for (auto& stage : stages_)
    for (auto& block : stage) h = block->forward(h);
  h = ops::adaptive_avg_pool2d(h, 1, 1).flatten(1);
  return head_->forward(h);
}

std::vector<std::string> ResNet::stage_names() const {
  std::vector<std::string> names;
  for (size_t i = 0; i < stages_.size(); ++i) names.push_back("layer" + std::to_string(i + 1));
  return names;
}

std::vector<std::vector<std::string>> ResNet::layer_groups() const {
  std::vector<std::vector<std::string>> g{{"conv1", "bn1"}};
  for (const std::string& s : stage_names()) g.push_back({s});
  g.push_back({head_name_});
  return g;
}

void ResNet::replace_head(int64_t num_classes, uint64_t seed) {
  config_.num_classes = num_classes;
  auto fresh = std::make_shared<nn::Linear>(feature_dim_, num_classes, true, 1.0 / std::sqrt(3.0 * double(feature_dim_)), seed);
  replace_module(head_name_, fresh);
  head_ = fresh;
}

}  // namespace hone::models
