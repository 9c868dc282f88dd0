// .npy: "\x93NUMPY", a version (1.0, 2.0 or 3.0), a little-endian header length (2 bytes in
// version 1, 4 bytes after), then a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// padded with spaces and ended by '\n', then the raw elements.
#include <cctype>
#include <cstring>
#include <vector>

#include "engine/io/checkpoint.h"
#include "engine/io/mapped_file.h"

namespace hone::io {
namespace {

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  Shape shape;
};

// Just enough of Python's literal syntax for the header dict: strings, True/False, tuples of
// non-negative integers. Anything else is an error naming the file.
class HeaderParser {
 public:
  HeaderParser(const std::string& path, const std::string& text) : path_(path), s_(text) {}

  NpyHeader parse() {
    NpyHeader h;
    bool has_descr = false, has_order = false, has_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = string_literal();
      expect(':');
      skip_space();
      if (key == "descr") {
        h.descr = string_literal();
        has_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = boolean();
        has_order = true;
      } else if (key == "shape") {
        h.shape = tuple();
        has_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') ++i_;
    }
    if (!has_descr || !has_order || !has_shape)
      fail("the header must have 'descr', 'fortran_order' and 'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    format_error(path_, "bad .npy header " + s_ + ": " + what);
  }
  void skip_space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  char peek() {
    if (i_ >= s_.size()) fail("ends early");
    return s_[i_];
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "' at character " + std::to_string(i_));
    ++i_;
  }
  std::string string_literal() {
    skip_space();
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string at character " + std::to_string(i_));
    const size_t end = s_.find(q, i_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(i_ + 1, end - i_ - 1);
    i_ = end + 1;
    return out;
  }
  bool boolean() {
    if (s_.compare(i_, 4, "True") == 0) { i_ += 4; return true; }
    if (s_.compare(i_, 5, "False") == 0) { i_ += 5; return false; }
    fail("'fortran_order' must be True or False");
  }
  Shape tuple() {
    expect('(');
    Shape out;
    while (true) {
      skip_space();
      if (peek() == ')') { ++i_; return out; }
      if (!std::isdigit(static_cast<unsigned char>(peek())))
        fail("'shape' must be a tuple of non-negative integers");
      int64_t v = 0;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) {
        if (v > (int64_t(1) << 48)) fail("'shape' entry is implausibly large");
        v = v * 10 + (s_[i_++] - '0');
      }
      if (i_ < s_.size() && s_[i_] == 'L') ++i_;  // Python 2 longs
      out.push_back(v);
      skip_space();
      if (peek() == ',') ++i_;
    }
  }

  const std::string& path_;
  const std::string& s_;
  size_t i_ = 0;
};

struct Descr {
  const char* code;  // without the byte-order character
  size_t size;
  DType loads_as;
  bool widen, is_signed;
};
const Descr kDescrs[] = {
    {"f8", 8, DType::F64, false, true}, {"f4", 4, DType::F32, false, true},
    {"f2", 2, DType::F16, false, true}, {"i8", 8, DType::I64, false, true},
    {"i4", 4, DType::I32, false, true}, {"u1", 1, DType::U8, false, false},
    {"b1", 1, DType::U8, false, false}, {"i2", 2, DType::I32, true, true},
    {"i1", 1, DType::I32, true, true},  {"u2", 2, DType::I32, true, false},
    {"u4", 4, DType::I64, true, false},
};

const char* descr_of(DType t) {
  switch (t) {
    case DType::F64: return "<f8";
    case DType::F32: return "<f4";
    case DType::F16: return "<f2";
    case DType::I64: return "<i8";
    case DType::I32: return "<i4";
    case DType::U8: return "|u1";
    case DType::BF16: break;
  }
  return nullptr;
}

}  // namespace

Tensor load_npy(const std::string& path) {
  auto f = MappedFile::open(path);
  const uint8_t* p = f->data();
  const size_t size = f->size();
  if (size < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0)
    format_error(path, "not a .npy file (expected the magic string \\x93NUMPY)");
  const int major = p[6];
  size_t header_len, header_start;
  if (major == 1) {
    header_len = read_le16(p + 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) format_error(path, "truncated .npy header");
    header_len = read_le32(p + 8);
    header_start = 12;
  } else {
    format_error(path, ".npy format version " + std::to_string(major) + "." +
                           std::to_string(p[7]) + " is not supported (1.0, 2.0 and 3.0 are)");
  }
  if (header_start + header_len > size)
    format_error(path, "truncated: the .npy header claims " + std::to_string(header_len) +
                           " bytes, the file has " + std::to_string(size - header_start));
  const std::string text(reinterpret_cast<const char*>(p + header_start), header_len);
  const NpyHeader h = HeaderParser(path, text).parse();

  const char order = h.descr.empty() ? '?' : h.descr[0];
  const std::string code = h.descr.size() > 1 ? h.descr.substr(1) : "";
  const Descr* d = nullptr;
  for (const auto& c : kDescrs)
    if (code == c.code) d = &c;
  if (order == '>' && d && d->size > 1)
    format_error(path, "big-endian dtype '" + h.descr + "' is not supported; save it little-endian");
  if (!d || !(order == '<' || order == '|' || order == '=' || (order == '>' && d->size == 1)))
    format_error(path, "unsupported dtype '" + h.descr +
                           "' (supported: <f8 <f4 <f2 <i8 <i4 <i2 |i1 <u4 <u2 |u1 |b1)");

  int64_t numel = 1;
  for (int64_t n : h.shape) {
    if (n && numel > (int64_t(1) << 50) / n)
      format_error(path, "shape " + shape_str(h.shape) + " is implausibly large");
    numel *= n;
  }
  const size_t data_start = header_start + header_len;
  const size_t nbytes = static_cast<size_t>(numel) * d->size;
  if (size - data_start < nbytes)
    format_error(path, "truncated: " + h.descr + " " + shape_str(h.shape) + " needs " +
                           std::to_string(nbytes) + " data bytes, the file has " +
                           std::to_string(size - data_start));
  if (size - data_start > nbytes)
    format_error(path, "has " + std::to_string(size - data_start - nbytes) +
                           " bytes after the array data (" + h.descr + " " +
                           shape_str(h.shape) + ")");

  // A copy rather than a view of the mapping: .npy inputs are small and short-lived, and a copy
  // does not keep the file mapped.
  std::shared_ptr<Storage> s;
  if (d->widen) {
    s = widen_integers(p + data_start, numel, d->size, d->is_signed, d->loads_as);
  } else {
    s = Storage::allocate(nbytes, Device::cpu());
    if (nbytes) std::memcpy(s->data(), p + data_start, nbytes);
  }
  if (!h.fortran_order)
    return Tensor::make_view(std::move(s), 0, h.shape, contiguous_strides(h.shape), d->loads_as);
  // Column-major: element (i0, ..., in) sits at i0 + i1*n0 + ...; describe that with strides
  // and copy into row-major order.
  Shape strides(h.shape.size());
  int64_t st = 1;
  for (size_t i = 0; i < h.shape.size(); ++i) {
    strides[i] = st;
    st *= h.shape[i];
  }
  return Tensor::make_view(std::move(s), 0, h.shape, strides, d->loads_as).contiguous();
}

void save_npy(const std::string& path, const Tensor& t) {
  const char* descr = descr_of(t.dtype());
  if (!descr)
    throw std::invalid_argument("save_npy: numpy has no " + std::string(dtype_name(t.dtype())) +
                                "; convert the tensor (e.g. to float32) before saving " + path);
  const Tensor c = t.detach().to(Device::cpu()).contiguous();
  std::string shape = "(";
  for (size_t i = 0; i < c.shape().size(); ++i)
    shape += std::to_string(c.shape()[i]) + (c.shape().size() == 1 ? "," : i + 1 < c.shape().size() ? ", " : "");
  shape += ")";
  std::string header =
      std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64, as numpy writes.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 65535)
    throw std::invalid_argument("save_npy: shape too long for a version 1.0 header: " + path);
  write_file_atomic(path, [&](std::FILE* f) {
    const uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                             uint8_t(header.size() & 0xFF), uint8_t(header.size() >> 8)};
    std::fwrite(pre, 1, 10, f);
    std::fwrite(header.data(), 1, header.size(), f);
    if (c.nbytes()) std::fwrite(c.data_ptr(), 1, c.nbytes(), f);
  });
}

}  // namespace hone::io
