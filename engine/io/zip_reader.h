// Reads the table of contents of a zip archive held in a MappedFile, and locates each entry's
// bytes inside the file. Only what torch.save writes is needed: stored (uncompressed) entries,
// with ZIP64 records for archives or entries past 4 GiB. Compressed entries are listed but
// refused when their bytes are asked for.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/io/mapped_file.h"

namespace hone::io {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 = stored, 8 = deflate
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0, size = 0;
  uint64_t local_header_offset = 0;
};

class ZipReader {
 public:
  // Parses the central directory; throws FormatError naming the file when it is not a zip
  // archive or its directory is damaged or truncated.
  explicit ZipReader(std::shared_ptr<MappedFile> file);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;

  // Byte offset in the file of a stored entry's data, checked to lie inside the file. Throws
  // FormatError for compressed entries.
  uint64_t data_offset(const ZipEntry& e) const;
  // A stored entry's bytes, checked against the CRC-32 in the directory (for small entries such
  // as data.pkl; tensor data is not checksummed, which would read gigabytes twice).
  std::string read_checked(const ZipEntry& e) const;

  const std::shared_ptr<MappedFile>& file() const { return file_; }

 private:
  std::shared_ptr<MappedFile> file_;
  std::vector<ZipEntry> entries_;
  std::map<std::string, size_t> index_;
};

}  // namespace hone::io
