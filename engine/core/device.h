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
// Visible CUDA devices (0 without CUDA support or without a driver).
int cuda_device_count();
// float32 matmuls and convolutions on CUDA use TF32 tensor cores (10-bit mantissa products,
// float32 accumulation) when on; off by default so that CUDA results match the CPU's. No effect
// on the CPU or in builds without CUDA.
void set_allow_tf32(bool on);
bool allow_tf32();
// The device's name as the driver reports it ("NVIDIA H100 80GB HBM3"); "cpu" for the CPU.
// Throws std::runtime_error when the device cannot be queried.
std::string device_name(const Device& device);

}  // namespace hone
