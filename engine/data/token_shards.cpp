#include "engine/data/token_shards.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "kernels/philox.h"

namespace hone::data {
namespace fs = std::filesystem;

// Shards are written and mapped as the host's integers, which are the format's little-endian ones.
static_assert(std::endian::native == std::endian::little, "token shards assume a little-endian host");

namespace {

constexpr char kMagic[8] = {'H', 'O', 'N', 'E', 'T', 'O', 'K', '1'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 64;
constexpr const char* kMetaName = "meta.json";

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

std::string errno_text() { return std::strerror(errno); }

const char* dtype_for_bytes(int bytes) { return bytes == 2 ? "uint16" : "uint32"; }

// ---------------------------------------------------------------------------------------------
// Writing

// Writes `path` via a temporary file in the same folder, synced and renamed into place, so that a
// reader (or a crash) sees the old file or the complete new one, never a partial one.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) fail(tmp_, "cannot create (" + errno_text() + ")");
  }
  ~AtomicFile() {  // only reached with an open file when an exception is unwinding
    if (f_) {
      std::fclose(f_);
      std::remove(tmp_.c_str());
    }
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write_at(long offset, const void* data, size_t n) {
    if (std::fseek(f_, offset, SEEK_SET) != 0) fail(tmp_, "seek failed (" + errno_text() + ")");
    write(data, n);
  }
  void write(const void* data, size_t n) {
    if (n && std::fwrite(data, 1, n, f_) != n) fail(tmp_, "write failed (" + errno_text() + ")");
  }
  void commit() {
    if (std::fflush(f_) != 0 || ::fsync(fileno(f_)) != 0)
      fail(tmp_, "flush failed (" + errno_text() + ")");
    const int rc = std::fclose(f_);
    f_ = nullptr;
    if (rc != 0) fail(tmp_, "close failed (" + errno_text() + ")");
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      const std::string why = errno_text();
      std::remove(tmp_.c_str());
      fail(path_, "cannot rename the temporary file into place (" + why + ")");
    }
  }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
};

std::array<uint8_t, kHeaderBytes> make_header(int bytes_per_id, int64_t count) {
  std::array<uint8_t, kHeaderBytes> h{};
  std::memcpy(h.data(), kMagic, 8);
  const uint32_t version = kVersion, width = uint32_t(bytes_per_id);
  std::memcpy(h.data() + 8, &version, 4);
  std::memcpy(h.data() + 12, &width, 4);
  std::memcpy(h.data() + 16, &count, 8);
  return h;
}

// Appends ids to <dir>/<split>_NNN.bin files, starting a new one every shard_tokens ids.
class ShardWriter {
 public:
  ShardWriter(fs::path dir, std::string split, int bytes_per_id, int64_t shard_tokens)
      : dir_(std::move(dir)), split_(std::move(split)), width_(bytes_per_id), cap_(shard_tokens) {}

  void append(const int32_t* ids, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (!file_) open_shard();
      const uint32_t id = uint32_t(ids[i]);  // checked to be in [0, vocab_size) by the caller
      if (width_ == 2) {
        const uint16_t v = uint16_t(id);
        std::memcpy(buf_.data() + buffered_, &v, 2);
      } else {
        std::memcpy(buf_.data() + buffered_, &id, 4);
      }
      buffered_ += size_t(width_);
      ++in_shard_;
      ++total_;
      if (buffered_ == buf_.size()) flush_buffer();
      if (in_shard_ == cap_) close_shard();
    }
  }
  void append_one(int32_t id) { append(&id, 1); }

  // Closes the last shard; returns the shard file names in order.
  std::vector<std::string> finish() {
    if (file_) close_shard();
    return names_;
  }
  int64_t total() const { return total_; }

 private:
  void open_shard() {
    char name[64];
    std::snprintf(name, sizeof name, "%s_%03zu.bin", split_.c_str(), names_.size());
    names_.push_back(name);
    file_ = std::make_unique<AtomicFile>((dir_ / name).string());
    const auto placeholder = make_header(width_, 0);  // the count is known at close
    file_->write(placeholder.data(), placeholder.size());
    in_shard_ = 0;
  }
  void flush_buffer() {
    file_->write(buf_.data(), buffered_);
    buffered_ = 0;
  }
  void close_shard() {
    flush_buffer();
    const auto header = make_header(width_, in_shard_);
    file_->write_at(0, header.data(), header.size());
    file_->commit();
    file_.reset();
  }

  fs::path dir_;
  std::string split_;
  int width_;
  int64_t cap_;
  std::unique_ptr<AtomicFile> file_;
  std::vector<uint8_t> buf_ = std::vector<uint8_t>(1 << 16);
  size_t buffered_ = 0;
  int64_t in_shard_ = 0, total_ = 0;
  std::vector<std::string> names_;
};

// round(fraction * n), at least 1 when the fraction is positive, and never all n (train keeps one).
int64_t val_count(double fraction, int64_t n) {
  int64_t k = std::llround(fraction * double(n));
  if (fraction > 0) k = std::max<int64_t>(k, 1);
  return std::clamp<int64_t>(k, 0, n - 1);
}

const std::vector<std::string> kReservedMetaKeys = {
    "format", "version", "dtype", "vocab_size", "eot_id", "documents", "train_documents",
    "val_documents", "split_by", "train_tokens", "val_tokens", "shard_tokens", "val_fraction",
    "shards"};

}  // namespace

PrepareStats write_token_shards(const std::string& out_dir,
                                const std::vector<std::vector<int32_t>>& docs, int64_t vocab_size,
                                int32_t eot_id, const PrepareOptions& opt,
                                const nlohmann::json& extra_meta) {
  auto bad = [](const std::string& what) { throw std::invalid_argument("write_token_shards: " + what); };
  if (docs.empty()) bad("no documents");
  if (vocab_size < 1 || vocab_size > (int64_t(1) << 32))
    bad("vocab_size " + std::to_string(vocab_size) + " outside [1, 2^32]");
  if (eot_id < 0 || eot_id >= vocab_size)
    bad("eot_id " + std::to_string(eot_id) + " outside [0, " + std::to_string(vocab_size) + ")");
  if (!(opt.val_fraction >= 0 && opt.val_fraction < 1))
    bad("val_fraction " + std::to_string(opt.val_fraction) + " outside [0, 1)");
  if (opt.shard_tokens < 1) bad("shard_tokens must be >= 1");
  if (!extra_meta.is_null() && !extra_meta.is_object()) bad("extra_meta must be a JSON object");
  for (const auto& key : kReservedMetaKeys)
    if (extra_meta.is_object() && extra_meta.contains(key)) bad("extra_meta may not set \"" + key + "\"");
  // Checked before anything is written, so a bad id never leaves a half-written folder behind.
  for (size_t d = 0; d < docs.size(); ++d)
    for (size_t t = 0; t < docs[d].size(); ++t)
      if (docs[d][t] < 0 || docs[d][t] >= vocab_size)
        bad("document " + std::to_string(d) + ", token " + std::to_string(t) + ": id " +
            std::to_string(docs[d][t]) + " outside [0, " + std::to_string(vocab_size) + ")");

  const fs::path dir(out_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(out_dir, "cannot create folder (" + ec.message() + ")");
  // Gone until the new shards are complete: an interrupted run must not leave an old meta.json
  // describing a mix of old and new shards.
  fs::remove(dir / kMetaName, ec);

  const int width = vocab_size <= 65536 ? 2 : 4;
  ShardWriter train(dir, "train", width, opt.shard_tokens), val(dir, "val", width, opt.shard_tokens);
  const int64_t n_docs = int64_t(docs.size());
  int64_t n_val_docs = 0;
  if (n_docs >= 2) {
    n_val_docs = val_count(opt.val_fraction, n_docs);
    for (int64_t d = 0; d < n_docs; ++d) {
      ShardWriter& w = d < n_docs - n_val_docs ? train : val;
      w.append(docs[d].data(), docs[d].size());
      w.append_one(eot_id);
    }
  } else {
    // One document: cut its stream (ids then eot, positions 0..len) by tokens instead.
    const auto& doc = docs[0];
    const int64_t len = int64_t(doc.size()), total = len + 1;
    const int64_t cut = total - val_count(opt.val_fraction, total);
    auto emit = [&](ShardWriter& w, int64_t from, int64_t to) {
      const int64_t ids_end = std::min(to, len);
      if (from < ids_end) w.append(doc.data() + from, size_t(ids_end - from));
      if (from <= len && to > len) w.append_one(eot_id);
    };
    emit(train, 0, cut);
    emit(val, cut, total);
  }
  const std::vector<std::string> train_shards = train.finish(), val_shards = val.finish();

  PrepareStats stats;
  stats.documents = n_docs;
  stats.train_tokens = train.total();
  stats.val_tokens = val.total();
  stats.dtype = dtype_for_bytes(width);

  nlohmann::json meta = extra_meta.is_object() ? extra_meta : nlohmann::json::object();
  meta["format"] = "hone-tokens";
  meta["version"] = kVersion;
  meta["dtype"] = stats.dtype;
  meta["vocab_size"] = vocab_size;
  meta["eot_id"] = eot_id;
  meta["documents"] = n_docs;
  meta["train_documents"] = n_docs >= 2 ? n_docs - n_val_docs : 1;
  meta["val_documents"] = n_docs >= 2 ? n_val_docs : 0;  // a token split has no whole val document
  meta["split_by"] = n_docs >= 2 ? "documents" : "tokens";
  meta["train_tokens"] = stats.train_tokens;
  meta["val_tokens"] = stats.val_tokens;
  meta["shard_tokens"] = opt.shard_tokens;
  meta["val_fraction"] = opt.val_fraction;
  meta["shards"] = {{"train", train_shards}, {"val", val_shards}};
  const std::string text = meta.dump(2) + "\n";
  AtomicFile meta_file((dir / kMetaName).string());
  meta_file.write(text.data(), text.size());
  meta_file.commit();
  return stats;
}

// ---------------------------------------------------------------------------------------------
// Reading

namespace {

// A read-only private mapping of a whole file.
class Mapping {
 public:
  explicit Mapping(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(path, "cannot open (" + errno_text() + ")");
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const std::string why = errno_text();
      ::close(fd);
      fail(path, "cannot stat (" + why + ")");
    }
    size_ = size_t(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const std::string why = errno_text();
        ::close(fd);
        fail(path, "cannot map (" + why + ")");
      }
      data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);  // the mapping stays valid without the descriptor
  }
  ~Mapping() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

struct Shard {
  std::string path;
  std::unique_ptr<Mapping> map;
  const uint8_t* ids = nullptr;  // first id, just past the header
  int64_t count = 0;
};

int64_t meta_int(const nlohmann::json& meta, const char* key, const std::string& path) {
  const auto it = meta.find(key);
  if (it == meta.end() || !it->is_number_integer())
    fail(path, std::string("expected an integer field \"") + key + "\"");
  return it->get<int64_t>();
}

// Maps one shard and checks its header against the folder's dtype and the file's size.
Shard open_shard(const std::string& path, int width) {
  Shard s;
  s.path = path;
  s.map = std::make_unique<Mapping>(path);
  const uint8_t* p = s.map->data();
  const size_t size = s.map->size();
  if (size < kHeaderBytes)
    fail(path, "truncated: " + std::to_string(size) + " bytes, shorter than the 64-byte header");
  if (std::memcmp(p, kMagic, 8) != 0) fail(path, "bad magic: expected \"HONETOK1\" (not a hone token shard)");
  uint32_t version, file_width;
  std::memcpy(&version, p + 8, 4);
  std::memcpy(&file_width, p + 12, 4);
  std::memcpy(&s.count, p + 16, 8);
  if (version != kVersion)
    fail(path, "format version " + std::to_string(version) + ", expected " + std::to_string(kVersion));
  if (file_width != uint32_t(width))
    fail(path, "ids of " + std::to_string(file_width) + " bytes, but meta.json says " +
                   dtype_for_bytes(width) + " (" + std::to_string(width) + " bytes)");
  if (s.count < 0 || (size - kHeaderBytes) / size_t(width) != uint64_t(s.count) ||
      (size - kHeaderBytes) % size_t(width) != 0)
    fail(path, "header says " + std::to_string(s.count) + " ids, which needs " +
                   std::to_string(kHeaderBytes + uint64_t(std::max<int64_t>(s.count, 0)) * width) +
                   " bytes, but the file has " + std::to_string(size) + " bytes (truncated or corrupt)");
  s.ids = p + kHeaderBytes;
  return s;
}

// Throws naming the shard and position of the first id >= vocab_size. One pass over the mapping.
template <class T>
void check_ids(const Shard& s, int64_t vocab_size) {
  const T* ids = reinterpret_cast<const T*>(s.ids);
  T max = 0;
  for (int64_t i = 0; i < s.count; ++i) max = std::max(max, ids[i]);  // vectorizes; the common case
  if (s.count == 0 || int64_t(max) < vocab_size) return;
  for (int64_t i = 0; i < s.count; ++i)
    if (int64_t(ids[i]) >= vocab_size)
      fail(s.path, "id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                       " is not below vocab_size " + std::to_string(vocab_size));
}

}  // namespace

struct TokenWindowLoader::State {
  std::string dir, split;
  int64_t T = 0;
  uint64_t seed = 0;
  int64_t vocab_size = 0;
  int32_t eot_id = 0;
  int width = 2;
  std::vector<Shard> shards;
  std::vector<int64_t> starts;  // starts[k] = index of shard k's first id in the split; back() = total
  int64_t total = 0;
  int64_t position = 0;     // random batches drawn
  int64_t next_window = 0;  // next sequential window

  // Copies ids [start, start + n) of the split (which may span shards) into out, as int64.
  void read(int64_t start, int64_t n, int64_t* out) const {
    size_t k = size_t(std::upper_bound(starts.begin(), starts.end(), start) - starts.begin()) - 1;
    while (n > 0) {
      const Shard& s = shards[k];
      const int64_t local = start - starts[k];
      const int64_t take = std::min(n, s.count - local);
      if (width == 2) {
        const uint16_t* src = reinterpret_cast<const uint16_t*>(s.ids) + local;
        for (int64_t i = 0; i < take; ++i) out[i] = src[i];
      } else {
        const uint32_t* src = reinterpret_cast<const uint32_t*>(s.ids) + local;
        for (int64_t i = 0; i < take; ++i) out[i] = src[i];
      }
      out += take;
      start += take;
      n -= take;
      ++k;
    }
  }
};

TokenWindowLoader::TokenWindowLoader(const std::string& dir, const std::string& split,
                                     int64_t seq_len, uint64_t seed)
    : s_(std::make_unique<State>()) {
  if (split != "train" && split != "val")
    throw std::invalid_argument("TokenWindowLoader: split must be \"train\" or \"val\", got \"" + split + "\"");
  if (seq_len < 1) throw std::invalid_argument("TokenWindowLoader: seq_len must be >= 1");
  State& s = *s_;
  s.dir = dir;
  s.split = split;
  s.T = seq_len;
  s.seed = seed;

  const std::string meta_path = (fs::path(dir) / kMetaName).string();
  std::ifstream in(meta_path);
  if (!in) fail(meta_path, "missing (not a prepared token folder? run `hone prepare` first)");
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    fail(meta_path, std::string("not valid JSON (") + e.what() + ")");
  }
  if (!meta.is_object()) fail(meta_path, "expected a JSON object");
  if (meta.value("format", "") != "hone-tokens") fail(meta_path, "expected \"format\": \"hone-tokens\"");
  if (meta_int(meta, "version", meta_path) != int64_t(kVersion))
    fail(meta_path, "unsupported version, expected " + std::to_string(kVersion));
  const auto dtype = meta.find("dtype");
  if (dtype == meta.end() || !dtype->is_string() || (*dtype != "uint16" && *dtype != "uint32"))
    fail(meta_path, "expected \"dtype\" to be \"uint16\" or \"uint32\"");
  s.width = *dtype == "uint16" ? 2 : 4;
  s.vocab_size = meta_int(meta, "vocab_size", meta_path);
  if (s.vocab_size < 1 || s.vocab_size > (int64_t(1) << (8 * s.width)))
    fail(meta_path, "vocab_size " + std::to_string(s.vocab_size) + " does not fit dtype " + dtype->get<std::string>());
  const int64_t eot = meta_int(meta, "eot_id", meta_path);
  if (eot < 0 || eot >= s.vocab_size) fail(meta_path, "eot_id " + std::to_string(eot) + " is not below vocab_size");
  s.eot_id = int32_t(eot);
  const int64_t expected_tokens = meta_int(meta, (split + "_tokens").c_str(), meta_path);

  const auto shards = meta.find("shards");
  if (shards == meta.end() || !shards->is_object() || !shards->contains(split) || !(*shards)[split].is_array())
    fail(meta_path, "expected \"shards\": {\"" + split + "\": [file names]}");
  s.starts.push_back(0);
  for (const auto& name : (*shards)[split]) {
    // Plain names only: meta.json must not point outside its folder.
    if (!name.is_string() || name.get<std::string>().empty() ||
        name.get<std::string>().find('/') != std::string::npos || name == "." || name == "..")
      fail(meta_path, "shard entries must be file names in the folder, got " + name.dump());
    s.shards.push_back(open_shard((fs::path(dir) / name.get<std::string>()).string(), s.width));
    const Shard& sh = s.shards.back();
    if (s.width == 2) check_ids<uint16_t>(sh, s.vocab_size);
    else check_ids<uint32_t>(sh, s.vocab_size);
    s.starts.push_back(s.starts.back() + sh.count);
  }
  s.total = s.starts.back();
  if (s.total != expected_tokens)
    fail(meta_path, "\"" + split + "_tokens\" is " + std::to_string(expected_tokens) +
                        " but the shards hold " + std::to_string(s.total) + " ids");
  if (s.total < seq_len + 1)
    fail(dir, "the " + split + " split has " + std::to_string(s.total) + " tokens; seq_len " +
                  std::to_string(seq_len) + " needs at least " + std::to_string(seq_len + 1));
}

TokenWindowLoader::~TokenWindowLoader() = default;
TokenWindowLoader::TokenWindowLoader(TokenWindowLoader&&) noexcept = default;
TokenWindowLoader& TokenWindowLoader::operator=(TokenWindowLoader&&) noexcept = default;

void TokenWindowLoader::next_batch(int64_t B, Tensor& inputs, Tensor& targets) {
  if (B < 1) throw std::invalid_argument("TokenWindowLoader::next_batch: B must be >= 1");
  const State& s = *s_;
  const int64_t T = s.T;
  // Fresh tensors every batch: the previous batch may still be referenced (an embedding's saved
  // indices, say), so it must not be overwritten.
  Tensor x = Tensor::empty({B, T}, DType::I64), y = Tensor::empty({B, T}, DType::I64);
  int64_t* xp = x.data<int64_t>();
  int64_t* yp = y.data<int64_t>();
  std::vector<int64_t> window(size_t(T + 1));
  const uint64_t n = uint64_t(s_->position);
  const uint64_t starts = uint64_t(s.total - T);  // valid window starts: 0 .. total - T - 1
  for (int64_t i = 0; i < B; ++i) {
    // Counter (batch, row), key seed: one Philox block per window, no state to carry.
    const philox::U32x4 r = philox::philox4x32_10(
        {{uint32_t(n), uint32_t(n >> 32), uint32_t(i), uint32_t(uint64_t(i) >> 32)}},
        uint32_t(s.seed), uint32_t(s.seed >> 32));
    const uint64_t bits = uint64_t(r.v[0]) | (uint64_t(r.v[1]) << 32);
    // Lemire's multiply-shift: maps 64 random bits onto [0, starts) without a division.
    const int64_t start = int64_t((unsigned __int128)bits * starts >> 64);
    s.read(start, T + 1, window.data());
    std::copy(window.begin(), window.end() - 1, xp + i * T);
    std::copy(window.begin() + 1, window.end(), yp + i * T);
  }
  ++s_->position;
  inputs = x;
  targets = y;
}

bool TokenWindowLoader::next_sequential_batch(int64_t B, Tensor& inputs, Tensor& targets) {
  if (B < 1) throw std::invalid_argument("TokenWindowLoader::next_sequential_batch: B must be >= 1");
  State& s = *s_;
  const int64_t T = s.T;
  const int64_t windows = (s.total - 1 + T - 1) / T;  // ceil((total - 1) / T): every target once
  const int64_t rows = std::min(B, windows - s.next_window);
  if (rows <= 0) return false;
  Tensor x = Tensor::empty({rows, T}, DType::I64), y = Tensor::empty({rows, T}, DType::I64);
  int64_t* xp = x.data<int64_t>();
  int64_t* yp = y.data<int64_t>();
  std::vector<int64_t> window(size_t(T + 1));
  for (int64_t r = 0; r < rows; ++r, ++s.next_window) {
    const int64_t start = s.next_window * T;
    const int64_t have = std::min(T + 1, s.total - start);  // >= 2 for every window counted
    s.read(start, have, window.data());
    for (int64_t t = 0; t < T; ++t) {
      xp[r * T + t] = t < have ? window[size_t(t)] : s.eot_id;
      yp[r * T + t] = t + 1 < have ? window[size_t(t + 1)] : kIgnoreTarget;
    }
  }
  inputs = x;
  targets = y;
  return true;
}

void TokenWindowLoader::reset_sequential() { s_->next_window = 0; }

int64_t TokenWindowLoader::position() const { return s_->position; }

void TokenWindowLoader::restore(int64_t position) {
  if (position < 0)
    throw std::invalid_argument("TokenWindowLoader::restore: negative position " + std::to_string(position));
  s_->position = position;
}

int64_t TokenWindowLoader::num_tokens() const { return s_->total; }
int64_t TokenWindowLoader::vocab_size() const { return s_->vocab_size; }
int32_t TokenWindowLoader::eot_id() const { return s_->eot_id; }
int64_t TokenWindowLoader::seq_len() const { return s_->T; }

}  // namespace hone::data
