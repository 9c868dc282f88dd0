// A restricted unpickler for PyTorch checkpoints. It understands the opcodes torch.save emits
// (pickle protocols 2 to 5) and builds plain values: None, bools, ints, floats, strings, bytes,
// tuples, lists, dicts, storages and tensors. It never imports or calls anything: GLOBAL names
// are checked against a short allowlist (OrderedDict, torch's tensor-rebuilding functions,
// storage types, dtypes) and anything else is refused with a FormatError, so a crafted file
// (os.system, builtins.eval, ...) cannot run code.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"

namespace hone::io::pickle {

// One PyTorch storage, as named by a persistent id. The format reader (zip or legacy) fills in
// `data` once it knows where the bytes are.
struct StorageRecord {
  std::string key;           // the archive key ("0", "1", ... or a legacy address)
  std::string type;          // "FloatStorage", "HalfStorage", ...
  DType dtype = DType::F32;  // what it loads as in hone
  size_t file_elem_size = 4; // bytes per element in the file
  int64_t numel = 0;         // elements
  std::shared_ptr<Storage> data;
};

// torch._utils._rebuild_tensor[_v2](storage, storage_offset, size, stride, ...).
struct TensorRecord {
  std::shared_ptr<StorageRecord> storage;
  int64_t storage_offset = 0;  // in elements of the view source (a legacy storage view adds its own)
  Shape size, stride;
};

struct Value;
// Values point at each other without owning: a crafted pickle can make cycles (a list that
// contains itself), so every value is owned by the Arena of the load instead.
using ValuePtr = Value*;

struct Value {
  enum class Kind { None, Bool, Int, BigInt, Float, String, Bytes, Tuple, List, Dict, Global,
                    Storage, Tensor };
  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;  // String and Bytes; BigInt: little-endian two's complement; Global: "module.name"
  std::vector<ValuePtr> items;                        // Tuple, List
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // Dict, in insertion order
  std::shared_ptr<StorageRecord> storage;
  int64_t storage_view_offset = 0;  // legacy storage views: elements into `storage`
  std::shared_ptr<TensorRecord> tensor;

  // "a dict", "the string 'x'", ... for error messages.
  std::string describe() const;
  // The value under a string key of a Dict, or nullptr.
  ValuePtr get(const std::string& key) const;
};

// Owns every value of one or more unpickled objects; they live as long as it does.
class Arena {
 public:
  ValuePtr make(Value::Kind kind) {
    values_.push_back(std::make_unique<Value>());
    values_.back()->kind = kind;
    return values_.back().get();
  }

 private:
  std::vector<std::unique_ptr<Value>> values_;
};

// Resolves a persistent id (BINPERSID) to a Storage value made in `arena`.
using PersistentLoad = std::function<ValuePtr(const Value& pid, Arena& arena)>;

// Unpickles the object that starts at data[*pos] into `arena`; on return *pos is just past its
// STOP opcode. `path` names the file in error messages.
ValuePtr load(const std::string& path, const uint8_t* data, size_t size, size_t* pos,
              const PersistentLoad& persistent_load, Arena& arena);

// The storage types hone reads, e.g. "FloatStorage" -> float32 stored in 4 bytes. Returns false
// for other names.
bool storage_type_info(const std::string& name, DType* dtype, size_t* file_elem_size);

}  // namespace hone::io::pickle
