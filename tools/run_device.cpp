#include "tools/run_device.h"

#include <cstdio>
#include <stdexcept>

#include "engine/autograd/autocast_mode.h"

namespace hone::cli {

Device checked_device(const std::string& text, const std::string& where) {
  Device d;
  try {
    d = Device::parse(text);
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument(where + ": device '" + text + "' is not one of cpu, cuda, cuda:N");
  }
  if (d.is_cpu()) return d;
#if defined(HONE_WITH_CUDA)
  const int n = cuda_device_count();
  if (n == 0) throw std::invalid_argument(where + ": device '" + text + "': no CUDA device is visible");
  if (d.index >= n)
    throw std::invalid_argument(where + ": device '" + text + "': only " + std::to_string(n) + " CUDA device(s) visible");
#else
  throw std::invalid_argument(where + ": device '" + text + "': this hone build has no CUDA support");
#endif
  return d;
}

Device device_flag(const Args& a) { return checked_device(a.str("device", "cpu"), "--device"); }

DType autocast_dtype_of(const std::string& precision, const std::string& where) {
  try {
    return autocast_dtype_for(precision);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + ": " + e.what());
  }
}

DType precision_flag(const Args& a) { return autocast_dtype_of(a.str("precision", "fp32"), "--precision"); }

void place_model(nn::Module& model, const Device& device, std::FILE* log) {
  if (device.is_cpu()) return;
  model.to(device);
  std::fprintf(log, "device: %s (%s)\n", device.str().c_str(), device_name(device).c_str());
}

}  // namespace hone::cli
