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

namespace hone {

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

 private:
  Storage() = default;
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  uint64_t version_ = 0;
  std::function<void(void*)> release_;
};

}  // namespace hone
