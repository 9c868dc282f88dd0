// engine/io: safetensors, PyTorch (zip and legacy), .npy, atomic writes, load reports. Fixtures
// come from tests/fixtures/io/make_fixtures.py; expected.json holds the exact bytes PyTorch had.
// Corrupt inputs that are easy to make here (truncations, bad headers) are made by the tests.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "engine/io/checkpoint.h"
#include "engine/io/load_report.h"

namespace hone::io {
namespace {

inline std::string fixture(const std::string& name) {
  return std::string(HONE_SOURCE_DIR) + "/tests/fixtures/io/" + name;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

inline const nlohmann::json& expected() {
  static const nlohmann::json doc = nlohmann::json::parse(read_file(fixture("expected.json")));
  return doc;
}

// A fresh folder under gtest's temp dir, removed with the object.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = ::testing::TempDir() + "hone-io-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The tensor's values in row-major order as little-endian bytes, in hex.
inline std::string hex_of(const Tensor& t) {
  const Tensor c = t.contiguous();
  const auto* p = static_cast<const uint8_t*>(c.data_ptr());
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < c.nbytes(); ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

// Every expected tensor is present with the same dtype, shape and bytes, and nothing else is.
inline void expect_matches(const StateDict& sd, const nlohmann::json& want) {
  EXPECT_EQ(sd.size(), want.size());
  for (auto it = want.begin(); it != want.end(); ++it) {
    SCOPED_TRACE(it.key());
    auto t = sd.find(it.key());
    ASSERT_NE(t, sd.end()) << "missing " << it.key();
    EXPECT_EQ(dtype_name(t->second.dtype()), (*it)["dtype"].get<std::string>());
    EXPECT_EQ(t->second.shape(), (*it)["shape"].get<Shape>());
    EXPECT_EQ(hex_of(t->second), (*it)["hex"].get<std::string>());
  }
}

// Runs `load`, which must throw FormatError whose message names `path` and contains `what`.
template <class F>
void expect_format_error(F&& load, const std::string& path, const std::string& what) {
  try {
    load();
    ADD_FAILURE() << "no FormatError for " << path << " (expected one about '" << what << "')";
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << "expected '" << what << "' in: " << msg;
  }
}

std::string st_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = char(uint64_t(header.size()) >> (8 * i));
  return out + header + data;
}

// ---- PyTorch ------------------------------------------------------------------------------------

TEST(IoTorch, ZipMatchesPyTorchBitForBit) {
  expect_matches(load_torch(fixture("zip.pt")), expected()["torch"]);
}

TEST(IoTorch, LegacyMatchesPyTorchBitForBit) {
  expect_matches(load_torch(fixture("legacy.pt")), expected()["torch"]);
}

TEST(IoTorch, Protocol4ZipMatches) {  // FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL
  expect_matches(load_torch(fixture("zip_protocol4.pt")), expected()["torch"]);
}

TEST(IoTorch, ViewsKeepStridesOffsetsAndSharedStorage) {
  for (const char* file : {"zip.pt", "legacy.pt"}) {
    SCOPED_TRACE(file);
    const StateDict sd = load_torch(fixture(file));
    const Tensor& tr = sd.at("transposed");
    EXPECT_EQ(tr.shape(), (Shape{4, 3}));
    EXPECT_EQ(tr.strides(), (Shape{1, 4}));
    EXPECT_FALSE(tr.is_contiguous());
    EXPECT_EQ(sd.at("slice").offset(), 2);
    EXPECT_EQ(sd.at("slice").storage(), sd.at("base").storage());
    EXPECT_EQ(sd.at("shared_col").storage(), sd.at("shared_a").storage());
    EXPECT_EQ(sd.at("shared_col").offset(), 1);
    EXPECT_EQ(sd.at("shared_col").strides(), (Shape{4}));
    EXPECT_EQ(sd.at("scalar").dim(), 0);
    EXPECT_EQ(sd.at("scalar").item(), 3.5);
    EXPECT_EQ(sd.at("empty").shape(), (Shape{0, 3}));
    // Shared storage really is shared: a write through one view shows in the other.
    sd.at("base").narrow(0, 3, 1).fill_(42.0);
    EXPECT_EQ(sd.at("slice").to_vector<float>()[1], 42.0f);
  }
}

TEST(IoTorch, TopLevelStateDictAndHuggingFaceFolder) {
  expect_matches(load_torch(fixture("linear.pt")), expected()["linear"]);
  expect_matches(load_checkpoint(fixture("hf_bin")), expected()["linear"]);
}

TEST(IoTorch, RefusesToUnpickleCode) {
  expect_format_error([] { load_torch(fixture("evil_os_system.pt")); },
                      fixture("evil_os_system.pt"), "refusing to unpickle os.system");
  expect_format_error([] { load_torch(fixture("evil_eval.pt")); }, fixture("evil_eval.pt"),
                      "refusing to unpickle __builtin__.eval");  // protocol 2 spells builtins so
  expect_format_error([] { load_torch(fixture("evil_raw.pkl")); }, fixture("evil_raw.pkl"),
                      "refusing to unpickle os.system");
  expect_format_error([] { load_checkpoint(fixture("evil_raw.pkl")); }, fixture("evil_raw.pkl"),
                      "only tensors and containers of state dicts are allowed");
}

TEST(IoTorch, UnsupportedOpcodeMissingEntryAndCompression) {
  expect_format_error([] { load_torch(fixture("unsupported_opcode.pt")); },
                      fixture("unsupported_opcode.pt"), "unsupported pickle opcode 0x8f (EMPTY_SET)");
  expect_format_error([] { load_torch(fixture("missing_entry.pt")); }, fixture("missing_entry.pt"),
                      "missing archive entry 'zip/data/0'");
  expect_format_error([] { load_torch(fixture("deflated.pt")); }, fixture("deflated.pt"),
                      "is compressed");
}

TEST(IoTorch, TruncatedFilesAreFormatErrors) {
  ScratchDir dir;
  for (const char* name : {"zip.pt", "legacy.pt", "linear.pt"}) {
    const std::string bytes = read_file(fixture(name));
    for (size_t len : {size_t(0), size_t(1), size_t(2), size_t(30), bytes.size() / 3,
                       bytes.size() / 2, bytes.size() - 100, bytes.size() - 1}) {
      SCOPED_TRACE(std::string(name) + " cut to " + std::to_string(len));
      const std::string p = dir / ("cut_" + std::to_string(len) + "_" + name);
      write_file(p, bytes.substr(0, len));
      expect_format_error([&] { load_torch(p); }, p, "");
      expect_format_error([&] { load_checkpoint(p); }, p, "");
    }
  }
}

TEST(IoTorch, CorruptPickleAndMagicAreFormatErrors) {
  ScratchDir dir;
  std::string zip = read_file(fixture("zip.pt"));
  const size_t at = zip.find("state_dict");
  ASSERT_NE(at, std::string::npos);
  zip[at] = 'S';
  write_file(dir / "crc.pt", zip);
  expect_format_error([&] { load_torch(dir / "crc.pt"); }, dir / "crc.pt", "CRC-32 mismatch");

  std::string legacy = read_file(fixture("legacy.pt"));
  legacy[5] ^= 1;  // inside the magic number
  write_file(dir / "magic.pt", legacy);
  expect_format_error([&] { load_torch(dir / "magic.pt"); }, dir / "magic.pt", "magic number");

  write_file(dir / "text.pt", "hello, I am not a checkpoint\n");
  expect_format_error([&] { load_torch(dir / "text.pt"); }, dir / "text.pt", "not a PyTorch");
  expect_format_error([&] { load_checkpoint(dir / "text.pt"); }, dir / "text.pt", "unrecognised");
  expect_format_error([&] { load_torch(fixture("f4.npy")); }, fixture("f4.npy"), "not a PyTorch");
}

// ---- safetensors ------------------------------------------------------------------------------

TEST(IoSafetensors, ReadsWhatTheSafetensorsPackageWrote) {
  const std::string p = fixture("all_dtypes.safetensors");
  expect_matches(load_safetensors(p), expected()["torch"]);
  const auto meta = safetensors_metadata(p);
  EXPECT_EQ(meta.at("format"), "pt");
  EXPECT_EQ(meta.at("note"), "hone");
  expect_matches(load_checkpoint(p), expected()["torch"]);
}

TEST(IoSafetensors, ShardedFolderAndIndex) {
  expect_matches(load_checkpoint(fixture("sharded")), expected()["torch"]);
  expect_matches(load_checkpoint(fixture("sharded/model.safetensors.index.json")),
                 expected()["torch"]);
}

TEST(IoSafetensors, RoundTripsEveryDtype) {
  ScratchDir dir;
  StateDict sd;
  for (DType dt : {DType::F32, DType::F64, DType::F16, DType::BF16, DType::I32, DType::I64,
                   DType::U8}) {
    const std::string name = std::string("t_") + dtype_name(dt);
    sd[name] = Tensor::rand({3, 5}, 7, -100, 100, DType::F32).to(dt);
  }
  sd["odd_u8"] = Tensor::from_vector<uint8_t>({1, 2, 3}, {3});  // 3 bytes: tests alignment
  sd["transposed"] = Tensor::randn({4, 6}, 3).transpose(0, 1);
  sd["scalar"] = Tensor::scalar(-1.25);
  sd["empty"] = Tensor::zeros({2, 0});
  const std::string p = dir / "rt.safetensors";
  save_safetensors(p, sd, {{"format", "pt"}, {"step", "12"}});

  const StateDict back = load_safetensors(p);
  ASSERT_EQ(back.size(), sd.size());
  for (const auto& [name, t] : sd) {
    SCOPED_TRACE(name);
    const Tensor& b = back.at(name);
    EXPECT_EQ(b.dtype(), t.dtype());
    EXPECT_EQ(b.shape(), t.shape());
    EXPECT_EQ(hex_of(b), hex_of(t));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data_ptr()) % dtype_size(b.dtype()), 0u);
  }
  EXPECT_EQ(safetensors_metadata(p).at("step"), "12");
  const std::string bytes = read_file(p);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(bytes[i]);
  EXPECT_EQ((8 + n) % 8, 0u) << "header not padded to 8 bytes";
}

TEST(IoSafetensors, LoadedTensorsAreCopyOnWriteViews) {
  ScratchDir dir;
  const std::string p = dir / "w.safetensors";
  save_safetensors(p, {{"w", Tensor::full({4}, 2.0)}});
  {
    StateDict sd = load_safetensors(p);
    sd.at("w").fill_(5.0);
    EXPECT_EQ(sd.at("w").to_vector<float>()[0], 5.0f);
  }
  EXPECT_EQ(load_safetensors(p).at("w").to_vector<float>()[0], 2.0f);  // the file is unchanged

  // Saving over the file that loaded tensors still map is safe: the rename leaves the old
  // mapping intact.
  StateDict sd = load_safetensors(p);
  sd["v"] = Tensor::full({2}, 3.0);
  save_safetensors(p, sd);
  EXPECT_EQ(sd.at("w").to_vector<float>()[0], 2.0f);
  const StateDict back = load_safetensors(p);
  EXPECT_EQ(back.at("w").to_vector<float>(), (std::vector<float>{2, 2, 2, 2}));
  EXPECT_EQ(back.at("v").to_vector<float>(), (std::vector<float>{3, 3}));
}

TEST(IoSafetensors, CorruptHeadersAreFormatErrors) {
  ScratchDir dir;
  const std::string f32x2(8, '\0');
  struct Case {
    const char* name;
    std::string bytes;
    const char* what;
  };
  const Case cases[] = {
      {"short", "abc", "shorter than the 8-byte header length"},
      {"huge_len", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10), "implausible"},
      {"len_past_eof", st_file("{}", "").substr(0, 9), "truncated"},
      {"not_object", st_file("[1, 2]  ", ""), "does not start with '{'"},
      {"bad_json", st_file("{\"a\": {\"dtype\": ", ""), "not valid JSON"},
      {"past_eof", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "abcd"),
       "reach past the end of the file"},
      {"size_mismatch", st_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f32x2),
       "needs 12"},
      {"overlap",
       st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
               std::string(12, '\0')),
       "overlap"},
      {"hole", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32x2 + "xy"),
       "belong to no tensor"},
      {"bad_dtype", st_file(R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "xy"),
       "unsupported dtype \"F8_E4M3\""},
      {"neg_shape", st_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f32x2),
       "non-negative"},
      {"reversed", st_file(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[8,0]}})", f32x2),
       "end before they begin"},
      {"extra_field",
       st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", f32x2),
       "unexpected field"},
      {"bad_meta", st_file(R"({"__metadata__":{"k":3}})", ""), "must be a string"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string p = dir / (std::string(c.name) + ".safetensors");
    write_file(p, c.bytes);
    expect_format_error([&] { load_safetensors(p); }, p, c.what);
  }
  // Truncated copies of a real file.
  const std::string good = read_file(fixture("all_dtypes.safetensors"));
  for (size_t len : {size_t(7), size_t(8), size_t(50), good.size() - 1}) {
    const std::string p = dir / ("cut" + std::to_string(len) + ".safetensors");
    write_file(p, good.substr(0, len));
    expect_format_error([&] { load_safetensors(p); }, p, "");
  }
  // Wrong magic: a zip is not safetensors.
  expect_format_error([] { load_safetensors(fixture("zip.pt")); }, fixture("zip.pt"), "");
}

TEST(IoSafetensors, NarrowIntegersWidenExactly) {
  ScratchDir dir;
  const std::string p = dir / "ints.safetensors";
  const std::string i16("\x00\x80\xff\xff\xff\x7f", 6);  // -32768, -1, 32767
  const std::string u16("\xff\xff", 2);
  write_file(p, st_file(R"({"a":{"dtype":"I16","shape":[3],"data_offsets":[0,6]},)"
                        R"("b":{"dtype":"U16","shape":[1],"data_offsets":[6,8]},)"
                        R"("c":{"dtype":"BOOL","shape":[2],"data_offsets":[8,10]}})",
                        i16 + u16 + std::string("\x01\x00", 2)));
  const StateDict sd = load_safetensors(p);
  EXPECT_EQ(sd.at("a").dtype(), DType::I32);
  EXPECT_EQ(sd.at("a").to_vector<int32_t>(), (std::vector<int32_t>{-32768, -1, 32767}));
  EXPECT_EQ(sd.at("b").to_vector<int32_t>(), (std::vector<int32_t>{65535}));
  EXPECT_EQ(sd.at("c").dtype(), DType::U8);
  EXPECT_EQ(sd.at("c").to_vector<uint8_t>(), (std::vector<uint8_t>{1, 0}));
}

// ---- npy ----------------------------------------------------------------------------------------

TEST(IoNpy, ReadsWhatNumpyWrote) {
  const auto& want = expected()["npy"];
  for (auto it = want.begin(); it != want.end(); ++it) {
    SCOPED_TRACE(it.key());
    const Tensor t = load_npy(fixture(it.key() + ".npy"));
    EXPECT_EQ(dtype_name(t.dtype()), (*it)["dtype"].get<std::string>());
    EXPECT_EQ(t.shape(), (*it)["shape"].get<Shape>());
    EXPECT_EQ(hex_of(t), (*it)["hex"].get<std::string>());
  }
}

TEST(IoNpy, RoundTripsEveryDtype) {
  ScratchDir dir;
  for (DType dt : {DType::F32, DType::F64, DType::F16, DType::I32, DType::I64, DType::U8}) {
    SCOPED_TRACE(dtype_name(dt));
    for (const Shape& shape : {Shape{}, Shape{5}, Shape{2, 3}, Shape{0, 4}}) {
      const Tensor t = Tensor::rand(shape, 11, 0, 100).to(dt);
      const std::string p = dir / "a.npy";
      save_npy(p, t);
      EXPECT_EQ((read_file(p).find('\n') + 1) % 64, 0u) << "header not padded to 64 bytes";
      const Tensor back = load_npy(p);
      EXPECT_EQ(back.dtype(), dt);
      EXPECT_EQ(back.shape(), shape);
      EXPECT_EQ(hex_of(back), hex_of(t));
    }
  }
  EXPECT_THROW(save_npy(dir / "b.npy", Tensor::zeros({2}, DType::BF16)), std::invalid_argument);
}

TEST(IoNpy, CorruptFilesAreFormatErrors) {
  ScratchDir dir;
  expect_format_error([] { load_npy(fixture("big_endian.npy")); }, fixture("big_endian.npy"),
                      "big-endian");
  expect_format_error([] { load_npy(fixture("zip.pt")); }, fixture("zip.pt"), "magic");
  const std::string good = read_file(fixture("f4.npy"));
  const struct {
    const char* name;
    std::string bytes;
    const char* what;
  } cases[] = {
      {"cut_data", good.substr(0, good.size() - 1), "truncated"},
      {"cut_header", good.substr(0, 40), "truncated"},
      {"extra", good + "xx", "after the array data"},
      {"version9", good.substr(0, 6) + "\x09" + good.substr(7), "version 9"},
      {"bad_descr", std::string(good).replace(good.find("<f4"), 3, "<c8"), "unsupported dtype"},
      {"bad_dict", std::string(good).replace(good.find("shape"), 5, "shope"), "unexpected key"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string p = dir / (std::string(c.name) + ".npy");
    write_file(p, c.bytes);
    expect_format_error([&] { load_npy(p); }, p, c.what);
  }
}

// ---- atomic writes -------------------------------------------------------------------------------

TEST(IoAtomic, ThrowingWriterLeavesThePreviousFileIntact) {
  ScratchDir dir;
  const std::string p = dir / "ckpt.bin";
  write_file_atomic(p, [](std::FILE* f) { std::fputs("old contents", f); });
  EXPECT_EQ(read_file(p), "old contents");
  EXPECT_THROW(write_file_atomic(p,
                                 [](std::FILE* f) {
                                   std::fputs("half of the new", f);
                                   throw std::runtime_error("disk on fire");
                                 }),
               std::runtime_error);
  EXPECT_EQ(read_file(p), "old contents");
  // A failing save (bf16 is not representable in .npy) also leaves the old file.
  EXPECT_THROW(save_npy(p, Tensor::zeros({2}, DType::BF16)), std::invalid_argument);
  EXPECT_EQ(read_file(p), "old contents");
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1) << "a temporary file was left behind";
  write_file_atomic(p, [](std::FILE* f) { std::fputs("new", f); });
  EXPECT_EQ(read_file(p), "new");
}

TEST(IoAtomic, MissingDirectoryIsAnErrorNamingTheFile) {
  ScratchDir dir;
  const std::string p = dir / "no/such/dir/x.safetensors";
  try {
    save_safetensors(p, {{"a", Tensor::zeros({1})}});
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

// ---- load reports ------------------------------------------------------------------------------

TEST(IoLoadReport, StripPrefixesAndCompare) {
  StateDict ckpt = {{"module.conv.weight", Tensor::zeros({4, 3})},
                    {"module.transformer.fc.bias", Tensor::zeros({5})},
                    {"module.extra", Tensor::zeros({1})}};
  const StateDict stripped = strip_prefixes(ckpt, {"module.", "transformer."});
  EXPECT_EQ(stripped.count("conv.weight"), 1u);
  EXPECT_EQ(stripped.count("fc.bias"), 1u);
  EXPECT_THROW(strip_prefixes({{"a.x", Tensor::zeros({1})}, {"x", Tensor::zeros({1})}}, {"a."}),
               std::invalid_argument);

  const StateDict model = {{"conv.weight", Tensor::zeros({3, 4})},
                           {"fc.bias", Tensor::zeros({5}, DType::BF16)},
                           {"head.weight", Tensor::zeros({2})}};
  const LoadReport r = compare_state_dicts(model, stripped);
  EXPECT_EQ(r.applied, (std::vector<std::string>{"fc.bias"}));
  EXPECT_EQ(r.missing, (std::vector<std::string>{"head.weight"}));
  EXPECT_EQ(r.unexpected, (std::vector<std::string>{"extra"}));
  ASSERT_EQ(r.mismatched.size(), 1u);
  EXPECT_EQ(r.mismatched[0], "conv.weight: checkpoint float32[4, 3] vs model float32[3, 4]");
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.summary().find("missing: head.weight"), std::string::npos) << r.summary();
}

}  // namespace
}  // namespace hone::io
