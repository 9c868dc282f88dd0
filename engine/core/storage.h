// A reference-counted block of memory that tensors view. Several tensors (views) share one
// Storage; it is freed when the last one goes. The version counter is shared by all views and
// is bumped by every in-place write, which lets autograd notice that a tensor it saved for
// backward was changed afterwards.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "engine/core/device.h"
#include "engine/core/dtype.h"

namespace hone {

class Storage;

// A float32 parameter storage's copy in a 16-bit dtype, element for element (autocast's weight
// copy: engine/ops/autocast_copy.h). Current while the source's version equals `version`.
struct AutocastCopy {
  std::shared_ptr<Storage> data;  // empty: none made yet
  DType dtype = DType::F32;
  uint64_t version = 0;
};

class Storage {
 public:
  // Fresh memory (uninitialised) on `device`.
  static std::shared_ptr<Storage> allocate(size_t nbytes, Device device);
  // Wraps memory owned elsewhere (an mmap'd checkpoint, say); `release` runs when the storage goes.
  static std::shared_ptr<Storage> wrap(void* data, size_t nbytes, Device device,
                                       std::function<void(void*)> release);

  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

  // Set by nn::Module::register_parameter (and kept by Tensor::set_data_): the storage holds a
  // parameter, which changes only through version-bumping writes (optimizers, copy_), so autocast
  // may keep its 16-bit copy here and reuse it while the version is unchanged.
  bool is_parameter() const { return is_parameter_; }
  void mark_parameter() { is_parameter_ = true; }
  AutocastCopy& autocast_copy() { return autocast_copy_; }
  const AutocastCopy& autocast_copy() const { return autocast_copy_; }

 private:
  Storage() = default;
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  uint64_t version_ = 0;
  bool is_parameter_ = false;
  AutocastCopy autocast_copy_;
  std::function<void(void*)> release_;
};

}  // namespace hone
