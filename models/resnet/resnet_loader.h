// Loading ResNet weights from torchvision-style .pth (zip), the legacy .th files of
// akamaster/pytorch_resnet_cifar10 ("module." prefix, {'state_dict': ...}), or safetensors.
// `num_batches_tracked` buffers are read when present and tolerated when absent; a checkpoint
// whose shapes do not fit the chosen architecture is refused naming the tensor and both shapes,
// before anything is applied (nothing half-loaded).
#pragma once
#include <memory>
#include <string>

#include "models/load_report.h"
#include "models/resnet/resnet.h"

namespace hone::models {

struct LoadedResNet {
  std::shared_ptr<ResNet> model;
  ModelLoadReport report;
  std::string weights_path;
};

// `num_classes` <= 0 keeps the checkpoint's head; otherwise a checkpoint head of another size is
// replaced by a fresh one (reported in report.notes).
LoadedResNet load_resnet(const std::string& weights_path, const ResNetConfig& config, int64_t num_classes,
                         uint64_t seed = 1234);

}  // namespace hone::models
