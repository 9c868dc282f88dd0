// safetensors: an 8-byte little-endian header length N, N bytes of JSON, then the tensor bytes.
// The JSON maps each name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to
// the start of the data) plus an optional "__metadata__" of strings. Like the reference
// implementation we insist that the tensors cover the data exactly, without overlaps or holes:
// anything else is a damaged (or deliberately crafted) file.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <vector>

#include "engine/io/checkpoint.h"
#include "engine/io/mapped_file.h"

namespace hone::io {
namespace {

using nlohmann::json;

// The reference implementation's limit: a header this large is a corrupt length field.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeInfo {
  const char* name;  // as in the header
  size_t size;       // bytes per element in the file
  DType loads_as;
  bool widen;        // converted (copied) to loads_as
  bool is_signed;
};

// BOOL is stored as one byte 0/1, which is what hone's uint8 masks use.
const DTypeInfo kDTypes[] = {
    {"F64", 8, DType::F64, false, true},  {"F32", 4, DType::F32, false, true},
    {"F16", 2, DType::F16, false, true},  {"BF16", 2, DType::BF16, false, true},
    {"I64", 8, DType::I64, false, true},  {"I32", 4, DType::I32, false, true},
    {"U8", 1, DType::U8, false, false},   {"BOOL", 1, DType::U8, false, false},
    {"I16", 2, DType::I32, true, true},   {"I8", 1, DType::I32, true, true},
    {"U16", 2, DType::I32, true, false},  {"U32", 4, DType::I64, true, false},
};

const DTypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

const char* header_name(DType t) {
  switch (t) {
    case DType::F64: return "F64";
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::U8: return "U8";
  }
  return "?";
}

struct Header {
  json doc;
  size_t data_start = 0;  // byte offset of the data section in the file
};

// Reads and parses the header, checking the length field against the file.
Header read_header(const MappedFile& f) {
  const std::string& path = f.path();
  if (f.size() < 8)
    format_error(path, "not a safetensors file: " + std::to_string(f.size()) +
                           " bytes, shorter than the 8-byte header length");
  const uint64_t n = read_le64(f.data());
  if (n > kMaxHeaderBytes)
    format_error(path, "safetensors header length " + std::to_string(n) +
                           " is implausible (limit 100 MB): not a safetensors file or corrupt");
  if (n + 8 > f.size())
    format_error(path, "truncated: the safetensors header claims " + std::to_string(n) +
                           " bytes but the file has only " + std::to_string(f.size() - 8) +
                           " after the length field");
  if (n < 2 || f.data()[8] != '{')
    format_error(path, "safetensors header does not start with '{': not a safetensors file");
  Header h;
  h.data_start = 8 + n;
  const char* text = reinterpret_cast<const char*>(f.data() + 8);
  try {
    h.doc = json::parse(text, text + n);
  } catch (const json::exception& e) {
    format_error(path, std::string("safetensors header is not valid JSON: ") + e.what());
  }
  if (!h.doc.is_object()) format_error(path, "safetensors header is not a JSON object");
  return h;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& doc) {
  std::map<std::string, std::string> out;
  auto it = doc.find("__metadata__");
  if (it == doc.end()) return out;
  if (!it->is_object()) format_error(path, "\"__metadata__\" must be an object of strings");
  for (auto m = it->begin(); m != it->end(); ++m) {
    if (!m->is_string())
      format_error(path, "\"__metadata__\"[\"" + m.key() + "\"] must be a string, got " +
                             m->dump());
    out[m.key()] = m->get<std::string>();
  }
  return out;
}

struct Entry {
  std::string name;
  const DTypeInfo* dtype;
  Shape shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& path, const std::string& name, const json& v) {
  const std::string where = "tensor '" + name + "': ";
  if (!v.is_object()) format_error(path, where + "expected an object, got " + v.dump());
  for (auto it = v.begin(); it != v.end(); ++it)
    if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets")
      format_error(path, where + "unexpected field \"" + it.key() + "\"");
  Entry e;
  e.name = name;
  auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) format_error(path, where + "missing string \"dtype\"");
  e.dtype = find_dtype(dt->get<std::string>());
  if (!e.dtype)
    format_error(path, where + "unsupported dtype \"" + dt->get<std::string>() +
                           "\" (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U32 U16 U8 BOOL)");
  auto sh = v.find("shape");
  if (sh == v.end() || !sh->is_array()) format_error(path, where + "missing array \"shape\"");
  uint64_t numel = 1;
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned())
      format_error(path, where + "shape " + sh->dump() + " must hold non-negative integers");
    const uint64_t n = d.get<uint64_t>();
    if (n && numel > (uint64_t(1) << 50) / n)  // keeps numel * element size far from overflow
      format_error(path, where + "shape " + sh->dump() + " is implausibly large");
    numel *= n;
    e.shape.push_back(static_cast<int64_t>(n));
  }
  auto off = v.find("data_offsets");
  if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    format_error(path, where + "\"data_offsets\" must be [begin, end] with non-negative integers");
  e.begin = (*off)[0].get<uint64_t>();
  e.end = (*off)[1].get<uint64_t>();
  if (e.end < e.begin)
    format_error(path, where + "data_offsets " + off->dump() + " end before they begin");
  const uint64_t expect = numel * e.dtype->size;
  if (e.end - e.begin != expect)
    format_error(path, where + "data_offsets " + off->dump() + " span " +
                           std::to_string(e.end - e.begin) + " bytes but " + e.dtype->name +
                           " " + shape_str(e.shape) + " needs " + std::to_string(expect));
  return e;
}

}  // namespace

std::map<std::string, std::string> safetensors_metadata(const std::string& path) {
  auto f = MappedFile::open(path);
  return parse_metadata(path, read_header(*f).doc);
}

StateDict load_safetensors(const std::string& path) {
  auto f = MappedFile::open(path);
  const Header h = read_header(*f);
  parse_metadata(path, h.doc);  // validates it
  const uint64_t data_size = f->size() - h.data_start;

  std::vector<Entry> entries;
  for (auto it = h.doc.begin(); it != h.doc.end(); ++it)
    if (it.key() != "__metadata__") entries.push_back(parse_entry(path, it.key(), it.value()));

  // Sorted by offset, each tensor must start where the previous one ended and the last must end
  // at the end of the file.
  std::vector<const Entry*> order;
  for (const auto& e : entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t pos = 0;
  for (const Entry* e : order) {
    if (e->end > data_size)
      format_error(path, "tensor '" + e->name + "': data_offsets [" + std::to_string(e->begin) +
                             ", " + std::to_string(e->end) + "] reach past the end of the file (" +
                             std::to_string(data_size) + " data bytes): truncated?");
    if (e->begin < pos)
      format_error(path, "tensor '" + e->name + "': data_offsets [" + std::to_string(e->begin) +
                             ", " + std::to_string(e->end) + "] overlap another tensor's");
    if (e->begin > pos)
      format_error(path, "bytes [" + std::to_string(pos) + ", " + std::to_string(e->begin) +
                             ") of the data belong to no tensor");
    pos = e->end;
  }
  if (pos != data_size)
    format_error(path, "the last " + std::to_string(data_size - pos) +
                           " bytes of the file belong to no tensor");

  StateDict out;
  for (const Entry& e : entries) {
    const DTypeInfo& d = *e.dtype;
    const size_t offset = h.data_start + e.begin, nbytes = e.end - e.begin;
    const int64_t numel = shape_numel(e.shape);
    std::shared_ptr<Storage> s =
        d.widen ? widen_integers(f->data() + offset, numel, d.size, d.is_signed, d.loads_as)
                : storage_from_file(f, offset, nbytes, d.size);
    out[e.name] = Tensor::make_view(std::move(s), 0, e.shape, contiguous_strides(e.shape),
                                    d.loads_as);
  }
  return out;
}

void save_safetensors(const std::string& path, const StateDict& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Largest elements first, so that with the 8-aligned data start every tensor is aligned.
  std::vector<std::pair<std::string, Tensor>> order;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__")
      throw std::invalid_argument("save_safetensors: '__metadata__' is reserved, not a tensor name");
    if (!t.defined())
      throw std::invalid_argument("save_safetensors: tensor '" + name + "' is undefined");
    order.emplace_back(name, t.detach().to(Device::cpu()).contiguous());
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return dtype_size(a.second.dtype()) > dtype_size(b.second.dtype());
  });

  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t pos = 0;
  for (const auto& [name, t] : order) {
    json shape = json::array();
    for (int64_t d : t.shape()) shape.push_back(d);
    header[name] = {{"dtype", header_name(t.dtype())},
                    {"shape", shape},
                    {"data_offsets", {pos, pos + t.nbytes()}}};
    pos += t.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data then starts 8-byte aligned

  write_file_atomic(path, [&](std::FILE* f) {
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
    std::fwrite(len, 1, 8, f);
    std::fwrite(text.data(), 1, text.size(), f);
    for (const auto& [name, t] : order)
      if (t.nbytes()) std::fwrite(t.data_ptr(), 1, t.nbytes(), f);
  });
}

}  // namespace hone::io
