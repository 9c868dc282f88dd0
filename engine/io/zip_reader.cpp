// The zip layout (APPNOTE.TXT): local headers with data, then the central directory (one record
// per entry), then the end-of-central-directory record (EOCD), possibly preceded by ZIP64 records
// when a size or offset does not fit 32 bits. We read the EOCD from the end, then the directory;
// local headers only tell where each entry's data starts.
#include "engine/io/zip_reader.h"

#include <array>

namespace hone::io {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEocdSig = 0x06054b50,
                   kZip64LocatorSig = 0x07064b50, kZip64EocdSig = 0x06064b50;

uint32_t crc32(const uint8_t* p, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

}  // namespace

ZipReader::ZipReader(std::shared_ptr<MappedFile> file) : file_(std::move(file)) {
  const std::string& path = file_->path();
  const uint8_t* p = file_->data();
  const uint64_t size = file_->size();
  auto need = [&](uint64_t off, uint64_t n, const char* what) {
    if (off > size || n > size - off)
      format_error(path, std::string("truncated or damaged zip archive: ") + what +
                             " reaches past the end of the file");
  };

  // The EOCD is 22 bytes plus a comment of up to 65535 bytes, at the very end.
  if (size < 22) format_error(path, "not a zip archive (too short for an end-of-directory record)");
  uint64_t eocd = UINT64_MAX;
  const uint64_t lowest = size >= 22 + 65535 ? size - 22 - 65535 : 0;
  for (uint64_t i = size - 22 + 1; i-- > lowest;) {
    if (read_le32(p + i) == kEocdSig && i + 22 + read_le16(p + i + 20) == size) {
      eocd = i;
      break;
    }
  }
  if (eocd == UINT64_MAX)
    format_error(path, "not a zip archive, or truncated: no end-of-central-directory record");
  uint64_t count = read_le16(p + eocd + 10);
  uint64_t cd_size = read_le32(p + eocd + 12);
  uint64_t cd_offset = read_le32(p + eocd + 16);

  if (eocd >= 20 && read_le32(p + eocd - 20) == kZip64LocatorSig) {
    const uint64_t z64 = read_le64(p + eocd - 20 + 8);
    need(z64, 56, "the ZIP64 end-of-directory record");
    if (read_le32(p + z64) != kZip64EocdSig)
      format_error(path, "damaged zip archive: bad ZIP64 end-of-directory signature");
    count = read_le64(p + z64 + 32);
    cd_size = read_le64(p + z64 + 40);
    cd_offset = read_le64(p + z64 + 48);
  }
  need(cd_offset, cd_size, "the central directory");

  uint64_t pos = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    if (pos + 46 > cd_end || read_le32(p + pos) != kCentralSig)
      format_error(path, "damaged zip archive: central directory record " + std::to_string(i) +
                             " is missing or has a bad signature");
    ZipEntry e;
    const uint16_t flags = read_le16(p + pos + 8);
    e.method = read_le16(p + pos + 10);
    e.crc32 = read_le32(p + pos + 16);
    e.compressed_size = read_le32(p + pos + 20);
    e.size = read_le32(p + pos + 24);
    const uint16_t name_len = read_le16(p + pos + 28), extra_len = read_le16(p + pos + 30),
                   comment_len = read_le16(p + pos + 32);
    e.local_header_offset = read_le32(p + pos + 42);
    if (pos + 46 + name_len + extra_len + comment_len > cd_end)
      format_error(path, "damaged zip archive: central directory record " + std::to_string(i) +
                             " runs past the directory");
    e.name.assign(reinterpret_cast<const char*>(p + pos + 46), name_len);
    if (flags & 1) format_error(path, "zip entry '" + e.name + "' is encrypted");

    // ZIP64 extended information: 64-bit values for the fields that hold 0xFFFFFFFF, in order.
    const uint8_t* x = p + pos + 46 + name_len;
    const uint8_t* x_end = x + extra_len;
    while (x + 4 <= x_end) {
      const uint16_t id = read_le16(x), len = read_le16(x + 2);
      if (x + 4 + len > x_end) break;
      if (id == 0x0001) {
        const uint8_t* v = x + 4;
        const uint8_t* v_end = v + len;
        auto take = [&](uint64_t& field) {
          if (field != 0xFFFFFFFFu) return;
          if (v + 8 > v_end)
            format_error(path, "damaged zip archive: short ZIP64 field for '" + e.name + "'");
          field = read_le64(v);
          v += 8;
        };
        take(e.size);
        take(e.compressed_size);
        take(e.local_header_offset);
      }
      x += 4 + len;
    }
    pos += 46 + name_len + extra_len + comment_len;
    index_[e.name] = entries_.size();
    entries_.push_back(std::move(e));
  }
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

uint64_t ZipReader::data_offset(const ZipEntry& e) const {
  const std::string& path = file_->path();
  if (e.method != 0)
    format_error(path, "zip entry '" + e.name + "' is compressed (method " +
                           std::to_string(e.method) +
                           "); hone reads only stored entries, as torch.save writes them: "
                           "re-save the checkpoint with torch.save");
  const uint8_t* p = file_->data();
  const uint64_t size = file_->size();
  const uint64_t h = e.local_header_offset;
  if (h > size || size - h < 30 || read_le32(p + h) != kLocalSig)
    format_error(path, "damaged or truncated zip archive: no local header for '" + e.name + "'");
  const uint64_t start = h + 30 + read_le16(p + h + 26) + read_le16(p + h + 28);
  if (start > size || e.size > size - start)
    format_error(path, "truncated zip archive: entry '" + e.name + "' (" +
                           std::to_string(e.size) + " bytes) reaches past the end of the file");
  return start;
}

std::string ZipReader::read_checked(const ZipEntry& e) const {
  const uint64_t start = data_offset(e);
  const uint8_t* d = file_->data() + start;
  if (crc32(d, e.size) != e.crc32)
    format_error(file_->path(), "zip entry '" + e.name + "' is corrupt (CRC-32 mismatch)");
  return std::string(reinterpret_cast<const char*>(d), e.size);
}

}  // namespace hone::io
