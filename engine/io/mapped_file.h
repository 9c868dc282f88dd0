// A read-only view of a whole file through a private memory mapping, shared by the tensors made
// from it; plus the little helpers every reader here needs (little-endian integers, wrapping a
// byte range as tensor storage, error messages that name the file).
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "engine/core/storage.h"
#include "engine/io/checkpoint.h"

namespace hone::io {

class MappedFile {
 public:
  // Throws FormatError naming `path` when it cannot be opened or mapped.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// A CPU storage holding bytes [offset, offset + nbytes) of the file. It points into the mapping
// (which it keeps alive) when the address is aligned to `align` bytes, else it is a copy: kernels
// may rely on elements being naturally aligned.
std::shared_ptr<Storage> storage_from_file(const std::shared_ptr<MappedFile>& file, size_t offset,
                                           size_t nbytes, size_t align);

// "<path>: <what>" as a FormatError.
[[noreturn]] void format_error(const std::string& path, const std::string& what);

inline uint16_t read_le16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t read_le32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
inline uint64_t read_le64(const uint8_t* p) {
  return uint64_t(read_le32(p)) | (uint64_t(read_le32(p + 4)) << 32);
}

// Widens integer elements of a narrower type (int8, int16, uint16, uint32) into a fresh storage
// of `to` (int32 or int64): hone has no such dtypes, and widening keeps every value exact.
// `src_signed` and `src_size` describe the source elements.
std::shared_ptr<Storage> widen_integers(const uint8_t* src, int64_t count, size_t src_size,
                                        bool src_signed, DType to);

}  // namespace hone::io
