// ResNets with the parameter names of the checkpoints people have:
//  - torchvision ResNet-18/34 (BasicBlock) and -50 (Bottleneck, stride on the 3x3 as in v1.5):
//    conv1, bn1, layer1..layer4 (blocks with conv1/bn1/conv2/bn2[/conv3/bn3] and downsample.0/1),
//    fc. Stem "imagenet" (7x7 stride 2 + max pool) or "cifar" (3x3 stride 1, no pool).
//  - CIFAR ResNet-20/32/44/56 (He et al. 2015, option-A shortcuts: subsample + zero channels),
//    as in akamaster/pytorch_resnet_cifar10: conv1, bn1, layer1..layer3, linear.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/conv_layers.h"
#include "engine/nn/layers.h"

namespace hone::models {

struct ResNetConfig {
  std::string arch = "resnet18";  // resnet18, resnet34, resnet50, resnet20, resnet32, resnet44, resnet56
  std::string stem = "imagenet";  // torchvision nets: imagenet or cifar
  int64_t num_classes = 1000;
  bool cifar_style() const;       // the option-A CIFAR family
  // From a name like "resnet20"; throws std::invalid_argument listing the known ones.
  static ResNetConfig from_name(const std::string& arch, int64_t num_classes);
};

class ResNetBlock : public nn::Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
};

class ResNet : public nn::Module {
 public:
  ResNet(const ResNetConfig& config, uint64_t seed = 1234);
  Tensor forward(const Tensor& x);  // [N, 3, H, W] -> [N, num_classes]
  const ResNetConfig& config() const { return config_; }
  // Name of the classifier ("fc" or "linear") and the stage names, in order from the input.
  const std::string& head_name() const { return head_name_; }
  std::vector<std::string> stage_names() const;
  // Stem (conv1, bn1), each stage, then the head.
  std::vector<std::vector<std::string>> layer_groups() const override;
  // A fresh classifier for `num_classes` (transfer learning); the backbone is kept.
  void replace_head(int64_t num_classes, uint64_t seed);

 private:
  ResNetConfig config_;
  std::shared_ptr<nn::Conv2d> conv1_;
  std::shared_ptr<nn::BatchNorm2d> bn1_;
  std::vector<std::vector<std::shared_ptr<ResNetBlock>>> stages_;
  std::shared_ptr<nn::Linear> head_;
  std::string head_name_;
  int64_t feature_dim_ = 0;
};

}  // namespace hone::models
