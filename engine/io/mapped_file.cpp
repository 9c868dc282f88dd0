#include "engine/io/mapped_file.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>

namespace hone::io {

static_assert(std::endian::native == std::endian::little,
              "hone::io reads and writes little-endian files by reinterpreting memory");

void format_error(const std::string& path, const std::string& what) {
  throw FormatError(path + ": " + what);
}

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) format_error(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    format_error(path, std::string("cannot stat: ") + std::strerror(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    format_error(path, "is a directory, expected a file");
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    // MAP_PRIVATE with write permission: tensors viewing the file may be modified in place
    // (copy-on-write pages) without ever touching the file.
    void* p = ::mmap(nullptr, f->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      format_error(path, std::string("cannot map into memory: ") + std::strerror(err));
    }
    f->data_ = static_cast<uint8_t*>(p);
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  return f;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

std::shared_ptr<Storage> storage_from_file(const std::shared_ptr<MappedFile>& file, size_t offset,
                                           size_t nbytes, size_t align) {
  uint8_t* p = const_cast<uint8_t*>(file->data()) + offset;
  if (nbytes == 0 || reinterpret_cast<uintptr_t>(p) % align != 0) {
    auto s = Storage::allocate(nbytes, Device::cpu());
    if (nbytes) std::memcpy(s->data(), p, nbytes);
    return s;
  }
  std::shared_ptr<MappedFile> keep = file;
  return Storage::wrap(p, nbytes, Device::cpu(), [keep](void*) mutable { keep.reset(); });
}

std::shared_ptr<Storage> widen_integers(const uint8_t* src, int64_t count, size_t src_size,
                                        bool src_signed, DType to) {
  auto s = Storage::allocate(static_cast<size_t>(count) * dtype_size(to), Device::cpu());
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* p = src + i * src_size;
    int64_t v = 0;
    switch (src_size) {
      case 1: v = src_signed ? int64_t(int8_t(p[0])) : int64_t(p[0]); break;
      case 2: v = src_signed ? int64_t(int16_t(read_le16(p))) : int64_t(read_le16(p)); break;
      case 4: v = src_signed ? int64_t(int32_t(read_le32(p))) : int64_t(read_le32(p)); break;
      default: v = int64_t(read_le64(p)); break;
    }
    if (to == DType::I32)
      static_cast<int32_t*>(s->data())[i] = static_cast<int32_t>(v);
    else
      static_cast<int64_t*>(s->data())[i] = v;
  }
  return s;
}

}  // namespace hone::io
