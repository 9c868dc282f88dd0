// load_torch: the two layouts of torch.save.
//
// Zip (PyTorch >= 1.6): <prefix>/data.pkl is the pickled object; each storage it names by a
// persistent id ('storage', torch.FloatStorage, key, location, numel) lives raw in
// <prefix>/data/<key>; <prefix>/byteorder ("little") exists in newer files.
//
// Legacy: five things one after another: a pickled magic number, the protocol version (1001),
// sys_info (a dict with 'little_endian'), the pickled object (persistent ids
// ('storage', type, key, location, numel, view_metadata)), the list of storage keys, and then
// for each key in that order an int64 element count followed by the raw elements.
#include <algorithm>
#include <cstring>
#include <map>

#include "engine/io/checkpoint.h"
#include "engine/io/mapped_file.h"
#include "engine/io/pickle.h"
#include "engine/io/zip_reader.h"

namespace hone::io {
namespace {

using pickle::StorageRecord;
using pickle::Value;
using pickle::ValuePtr;
using Kind = Value::Kind;

// Checks a persistent id and returns its record, one per key: tensors naming the same key share
// one storage.
class StorageTable {
 public:
  explicit StorageTable(std::string path) : path_(std::move(path)) {}

  // Also returns the legacy sixth element (a storage view, or None), when present.
  std::pair<std::shared_ptr<StorageRecord>, const Value*> record(const Value& pid) {
    if (pid.kind != Kind::Tuple || pid.items.size() < 5 || pid.items[0]->kind != Kind::String ||
        pid.items[0]->s != "storage" || pid.items[1]->kind != Kind::Global ||
        pid.items[2]->kind != Kind::String || pid.items[4]->kind != Kind::Int)
      format_error(path_, "unexpected persistent id " + pid.describe() +
                              ": expected ('storage', storage type, key, location, numel)");
    std::string type = pid.items[1]->s;
    type = type.substr(type.rfind('.') + 1);
    const std::string& key = pid.items[2]->s;
    const int64_t numel = pid.items[4]->i;
    auto& rec = records_[key];
    if (!rec) {
      rec = std::make_shared<StorageRecord>();
      rec->key = key;
      rec->type = type;
      rec->numel = numel;
      if (numel < 0 || numel > (int64_t(1) << 48))
        format_error(path_, "storage '" + key + "' has an impossible size " + std::to_string(numel));
      pickle::storage_type_info(type, &rec->dtype, &rec->file_elem_size);
    } else if (rec->type != type || rec->numel != numel) {
      format_error(path_, "storage '" + key + "' is named as " + rec->type + " of " +
                              std::to_string(rec->numel) + " and as " + type + " of " +
                              std::to_string(numel));
    }
    const Value* view = pid.items.size() > 5 ? pid.items[5] : nullptr;
    return {rec, view};
  }

  const std::map<std::string, std::shared_ptr<StorageRecord>>& records() const { return records_; }

 private:
  std::string path_;
  std::map<std::string, std::shared_ptr<StorageRecord>> records_;
};

// The storage's bytes at `offset` in the file, converted to hone's dtype when it differs.
std::shared_ptr<Storage> storage_bytes(const std::shared_ptr<MappedFile>& f, size_t offset,
                                       const StorageRecord& r) {
  const size_t nbytes = size_t(r.numel) * r.file_elem_size;
  if (r.file_elem_size != dtype_size(r.dtype))  // Char, Short: widen to int32
    return widen_integers(f->data() + offset, r.numel, r.file_elem_size, true, r.dtype);
  return storage_from_file(f, offset, nbytes, r.file_elem_size);
}

ValuePtr storage_value(pickle::Arena& arena, std::shared_ptr<StorageRecord> rec,
                       int64_t view_offset = 0) {
  ValuePtr v = arena.make(Kind::Storage);
  v->storage = std::move(rec);
  v->storage_view_offset = view_offset;
  return v;
}

ValuePtr load_zip(const std::shared_ptr<MappedFile>& f, pickle::Arena& arena) {
  const std::string& path = f->path();
  ZipReader zip(f);
  // The prefix is the archive's name, which torch.save takes from the file name ("archive/" in
  // newer versions); find it from data.pkl.
  std::string prefix;
  int found = 0;
  for (const auto& e : zip.entries()) {
    const std::string& n = e.name;
    if (n.size() >= 8 && n.compare(n.size() - 8, 8, "data.pkl") == 0 &&
        (n.size() == 8 || n[n.size() - 9] == '/') &&
        std::count(n.begin(), n.end(), '/') <= 1) {
      prefix = n.substr(0, n.size() - 8);
      ++found;
    }
  }
  if (found == 0)
    format_error(path, "zip archive has no data.pkl entry: not a torch.save checkpoint");
  if (found > 1) format_error(path, "zip archive has several data.pkl entries");

  if (const ZipEntry* bo = zip.find(prefix + "byteorder")) {
    const std::string order = zip.read_checked(*bo);
    if (order != "little")
      format_error(path, "byteorder is '" + order + "'; only little-endian checkpoints are read");
  }
  const std::string pkl = zip.read_checked(*zip.find(prefix + "data.pkl"));

  StorageTable table(path);
  pickle::PersistentLoad load_storage = [&](const Value& pid, pickle::Arena& a) {
    auto [rec, view] = table.record(pid);
    if (!rec->data) {
      const std::string name = prefix + "data/" + rec->key;
      const ZipEntry* e = zip.find(name);
      if (!e) format_error(path, "missing archive entry '" + name + "' for a " + rec->type);
      const uint64_t need = uint64_t(rec->numel) * rec->file_elem_size;
      if (e->size != need)
        format_error(path, "archive entry '" + name + "' holds " + std::to_string(e->size) +
                               " bytes but a " + rec->type + " of " + std::to_string(rec->numel) +
                               " elements needs " + std::to_string(need));
      rec->data = storage_bytes(f, zip.data_offset(*e), *rec);
    }
    return storage_value(a, rec);
  };
  size_t pos = 0;
  return pickle::load(path, reinterpret_cast<const uint8_t*>(pkl.data()), pkl.size(), &pos,
                      load_storage, arena);
}

ValuePtr load_legacy(const std::shared_ptr<MappedFile>& f, pickle::Arena& arena) {
  const std::string& path = f->path();
  const uint8_t* p = f->data();
  const size_t size = f->size();
  size_t pos = 0;
  const pickle::PersistentLoad none;

  // 0x1950a86a20f9469cfc6c, little-endian, as LONG1 stores it.
  static const uint8_t kMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  ValuePtr magic = pickle::load(path, p, size, &pos, none, arena);
  if (magic->kind != Kind::BigInt || magic->s.size() != sizeof kMagic ||
      std::memcmp(magic->s.data(), kMagic, sizeof kMagic) != 0)
    format_error(path, "not a PyTorch checkpoint: the first pickle is not torch's magic number");
  ValuePtr protocol = pickle::load(path, p, size, &pos, none, arena);
  if (protocol->kind != Kind::Int || protocol->i != 1001)
    format_error(path, "unsupported legacy torch.save protocol " + protocol->describe() +
                           " (expected 1001)");
  ValuePtr sys_info = pickle::load(path, p, size, &pos, none, arena);
  ValuePtr little = sys_info->get("little_endian");
  if (!little || little->kind != Kind::Bool)
    format_error(path, "legacy sys_info lacks 'little_endian'");
  if (!little->b) format_error(path, "saved on a big-endian machine; only little-endian is read");

  StorageTable table(path);
  pickle::PersistentLoad load_storage = [&](const Value& pid, pickle::Arena& a) {
    auto [rec, view] = table.record(pid);
    if (view && view->kind == Kind::Tuple) {
      // An old storage view: (view_key, offset, view_size) into the root storage.
      if (view->items.size() != 3 || view->items[1]->kind != Kind::Int ||
          view->items[1]->i < 0 || view->items[1]->i > rec->numel)
        format_error(path, "bad storage view " + view->describe() + " of storage '" + rec->key +
                               "'");
      return storage_value(a, rec, view->items[1]->i);
    }
    return storage_value(a, rec);  // data comes after the pickle
  };
  ValuePtr obj = pickle::load(path, p, size, &pos, load_storage, arena);

  ValuePtr keys = pickle::load(path, p, size, &pos, none, arena);
  if (keys->kind != Kind::List) format_error(path, "legacy storage key list is missing");
  for (const auto& k : keys->items) {
    if (k->kind != Kind::String) format_error(path, "legacy storage key is not a string");
    auto it = table.records().find(k->s);
    if (it == table.records().end())
      format_error(path, "storage key '" + k->s + "' is used by no tensor");
    StorageRecord& r = *it->second;
    if (size - pos < 8)
      format_error(path, "truncated: storage '" + k->s + "' is missing at byte " +
                             std::to_string(pos));
    const int64_t numel = int64_t(read_le64(p + pos));
    pos += 8;
    if (numel != r.numel)
      format_error(path, "storage '" + k->s + "' holds " + std::to_string(numel) +
                             " elements but the pickle says " + std::to_string(r.numel));
    const size_t nbytes = size_t(numel) * r.file_elem_size;
    if (size - pos < nbytes)
      format_error(path, "truncated: storage '" + k->s + "' needs " + std::to_string(nbytes) +
                             " bytes at byte " + std::to_string(pos) + ", the file has " +
                             std::to_string(size - pos));
    r.data = storage_bytes(f, pos, r);
    pos += nbytes;
  }
  for (const auto& [key, r] : table.records())
    if (!r->data) format_error(path, "storage '" + key + "' has no data in the file");
  return obj;
}

// A hone tensor viewing the record's storage, after checking that the view fits inside it.
Tensor make_tensor(const std::string& path, const std::string& name,
                   const pickle::TensorRecord& t) {
  const StorageRecord& r = *t.storage;
  // Checked arithmetic: the numbers come from the file.
  int64_t numel = 1, last = t.storage_offset, step = 0;
  bool overflow = false;
  for (size_t d = 0; d < t.size.size(); ++d) {
    if (t.size[d] < 0 || t.stride[d] < 0)
      format_error(path, "tensor '" + name + "': negative size or stride " + shape_str(t.size) +
                             " / " + shape_str(t.stride));
    overflow |= __builtin_mul_overflow(numel, t.size[d], &numel);
    if (t.size[d] > 0) {
      overflow |= __builtin_mul_overflow(t.size[d] - 1, t.stride[d], &step);
      overflow |= __builtin_add_overflow(last, step, &last);
    }
  }
  if (overflow || t.storage_offset < 0 || (numel > 0 && last >= r.numel))
    format_error(path, "tensor '" + name + "': size " + shape_str(t.size) + ", stride " +
                           shape_str(t.stride) + " at offset " + std::to_string(t.storage_offset) +
                           " reaches past its " + r.type + " of " + std::to_string(r.numel) +
                           " elements");
  return Tensor::make_view(r.data, t.storage_offset, t.size, t.stride, r.dtype);
}

// The dict that holds the tensors: the object itself, or its 'state_dict' (or
// 'model_state_dict', 'model') entry when that is a dict.
StateDict collect(const std::string& path, const Value* obj) {
  if (obj->kind != Kind::Dict)
    format_error(path, "the saved object is " + obj->describe() + ", expected a dict of tensors");
  const Value* dict = obj;
  for (const char* key : {"state_dict", "model_state_dict", "model"}) {
    ValuePtr inner = obj->get(key);
    if (inner && inner->kind == Kind::Dict) {
      dict = inner;
      break;
    }
  }
  StateDict out;
  std::string others;
  for (const auto& [k, v] : dict->entries) {
    if (k->kind == Kind::String && v->kind == Kind::Tensor) {
      out[k->s] = make_tensor(path, k->s, *v->tensor);
    } else if (others.size() < 200) {
      others += (others.empty() ? "" : ", ") +
                (k->kind == Kind::String ? "'" + k->s + "'" : k->describe());
    }
  }
  if (out.empty() && !dict->entries.empty())
    format_error(path, "no tensors found at the top level or under 'state_dict', "
                       "'model_state_dict' or 'model'; entries: " + others);
  return out;
}

}  // namespace

StateDict load_torch(const std::string& path) {
  auto f = MappedFile::open(path);
  pickle::Arena arena;
  if (f->size() >= 4 && std::memcmp(f->data(), "PK\x03\x04", 4) == 0)
    return collect(path, load_zip(f, arena));
  if (f->size() >= 2 && f->data()[0] == 0x80)
    return collect(path, load_legacy(f, arena));
  format_error(path, "not a PyTorch checkpoint (neither a zip archive nor a pickle)");
}

}  // namespace hone::io
