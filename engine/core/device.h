// Where a tensor's memory lives.
#pragma once
#include <string>

namespace hone {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device&) const = default;
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
  // "cpu", "cuda", "cuda:1"; throws std::invalid_argument naming the text otherwise.
  static Device parse(const std::string& text);
};

// True when this build has CUDA and a device is visible.
bool cuda_available();

}  // namespace hone
