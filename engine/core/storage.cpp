#include "engine/core/storage.h"

#include "engine/core/allocator.h"

namespace hone {

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  std::shared_ptr<Storage> s(new Storage());
  s->nbytes_ = nbytes;
  s->device_ = device;
  if (device.is_cpu()) {
    s->data_ = cpu_alloc(nbytes);
    s->release_ = [nbytes](void* p) { cpu_free(p, nbytes); };
  } else {
    const int index = device.index;
    s->data_ = cuda_alloc(nbytes, index);
    s->release_ = [index](void* p) { cuda_free(p, index); };
  }
  return s;
}

std::shared_ptr<Storage> Storage::wrap(void* data, size_t nbytes, Device device,
                                       std::function<void(void*)> release) {
  std::shared_ptr<Storage> s(new Storage());
  s->data_ = data;
  s->nbytes_ = nbytes;
  s->device_ = device;
  s->release_ = std::move(release);
  return s;
}

Storage::~Storage() {
  if (release_) release_(data_);
}

}  // namespace hone
