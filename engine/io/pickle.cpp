// The restricted unpickler. A pickle is a program for a stack machine; we run the subset of
// opcodes that torch.save produces, with "calls" (REDUCE, NEWOBJ) interpreted by us for the few
// allowed callables instead of being executed.
#include "engine/io/pickle.h"

#include <cstring>

#include "engine/io/mapped_file.h"

namespace hone::io::pickle {
namespace {

using Kind = Value::Kind;

struct StorageType {
  const char* name;
  DType dtype;
  size_t size;
};
// Bool loads as uint8 (same bytes); Char (int8) and Short (int16) widen to int32.
const StorageType kStorageTypes[] = {
    {"FloatStorage", DType::F32, 4},  {"DoubleStorage", DType::F64, 8},
    {"HalfStorage", DType::F16, 2},   {"BFloat16Storage", DType::BF16, 2},
    {"LongStorage", DType::I64, 8},   {"IntStorage", DType::I32, 4},
    {"ShortStorage", DType::I32, 2},  {"CharStorage", DType::I32, 1},
    {"ByteStorage", DType::U8, 1},    {"BoolStorage", DType::U8, 1},
    {"UntypedStorage", DType::U8, 1},
};

// The callables and constants a state dict may name. Everything else is refused.
bool allowed_global(const std::string& module, const std::string& name) {
  if (module == "collections" && name == "OrderedDict") return true;
  if (module == "torch._utils" &&
      (name == "_rebuild_tensor_v2" || name == "_rebuild_tensor" || name == "_rebuild_parameter" ||
       name == "_rebuild_parameter_with_state"))
    return true;
  if (module == "_codecs" && name == "encode") return true;  // how protocol 2 pickles bytes
  if (module == "torch" && name == "Size") return true;
  if ((module == "torch" || module == "torch.storage") && storage_type_info(name, nullptr, nullptr))
    return true;
  // dtypes appear as plain constants (e.g. in optimizer or metadata entries).
  static const char* const kDTypes[] = {"float32", "float64", "float16", "bfloat16", "int64",
                                        "int32",   "int16",   "int8",    "uint8",    "bool"};
  if (module == "torch")
    for (const char* d : kDTypes)
      if (name == d) return true;
  return false;
}

const char* opcode_name(uint8_t op) {
  switch (op) {
    case 'I': return "INT";
    case 'L': return "LONG";
    case 'F': return "FLOAT";
    case 'S': return "STRING";
    case 'V': return "UNICODE";
    case 'P': return "PERSID";
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 'g': return "GET";
    case 'p': return "PUT";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return "unknown";
  }
}

class Machine {
 public:
  Machine(const std::string& path, const uint8_t* data, size_t size, size_t pos,
          const PersistentLoad& pl, Arena& arena)
      : path_(path), p_(data), size_(size), pos_(pos), persistent_load_(pl), arena_(arena) {}

  ValuePtr run(size_t* end) {
    while (true) {
      const size_t at = pos_;
      const uint8_t op = byte();
      switch (op) {
        case 0x80: byte(); break;                   // PROTO: any version; opcodes are checked
        case 0x95: bytes(8); break;                 // FRAME: a length hint only
        case '}': push(make(Kind::Dict)); break;    // EMPTY_DICT
        case ']': push(make(Kind::List)); break;    // EMPTY_LIST
        case ')': push(make(Kind::Tuple)); break;   // EMPTY_TUPLE
        case '(': marks_.push_back(stack_.size()); break;  // MARK
        case 'X': push(make_str(Kind::String, sized(4))); break;     // BINUNICODE
        case 0x8c: push(make_str(Kind::String, sized(1))); break;    // SHORT_BINUNICODE
        case 0x8d: push(make_str(Kind::String, sized(8))); break;    // BINUNICODE8
        case 'B': push(make_str(Kind::Bytes, sized(4))); break;      // BINBYTES
        case 'C': push(make_str(Kind::Bytes, sized(1))); break;      // SHORT_BINBYTES
        case 0x8e: push(make_str(Kind::Bytes, sized(8))); break;     // BINBYTES8
        case 'J': push(make_int(int32_t(read_le32(bytes(4))))); break;  // BININT
        case 'K': push(make_int(byte())); break;                        // BININT1
        case 'M': push(make_int(read_le16(bytes(2)))); break;           // BININT2
        case 0x8a: push(long_int(byte())); break;                       // LONG1
        case 0x8b: push(long_int(read_le32(bytes(4)))); break;          // LONG4
        case 'G': {                                                     // BINFLOAT (big-endian)
          const uint8_t* b = bytes(8);
          uint64_t u = 0;
          for (int k = 0; k < 8; ++k) u = (u << 8) | b[k];
          auto v = make(Kind::Float);
          std::memcpy(&v->f, &u, 8);
          push(v);
          break;
        }
        case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
          auto v = make(Kind::Bool);
          v->b = op == 0x88;
          push(v);
          break;
        }
        case 'N': push(make(Kind::None)); break;
        case 't': {  // TUPLE
          auto v = make(Kind::Tuple);
          v->items = pop_mark();
          push(v);
          break;
        }
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          auto v = make(Kind::Tuple);
          v->items.resize(op - 0x84);
          for (size_t k = v->items.size(); k-- > 0;) v->items[k] = pop();
          push(v);
          break;
        }
        case 'l': {  // LIST
          auto v = make(Kind::List);
          v->items = pop_mark();
          push(v);
          break;
        }
        case 'd': {  // DICT
          auto v = make(Kind::Dict);
          set_items(*v, pop_mark());
          push(v);
          break;
        }
        case 'a': {  // APPEND
          ValuePtr x = pop();
          list_top("APPEND").items.push_back(std::move(x));
          break;
        }
        case 'e': {  // APPENDS
          auto xs = pop_mark();
          auto& l = list_top("APPENDS").items;
          l.insert(l.end(), xs.begin(), xs.end());
          break;
        }
        case 's': {  // SETITEM
          ValuePtr v = pop(), k = pop();
          dict_top("SETITEM").entries.emplace_back(std::move(k), std::move(v));
          break;
        }
        case 'u': {  // SETITEMS
          auto xs = pop_mark();
          set_items(dict_top("SETITEMS"), xs);
          break;
        }
        case 'h': push(memo_get(byte())); break;                   // BINGET
        case 'j': push(memo_get(read_le32(bytes(4)))); break;      // LONG_BINGET
        case 'q': memo_[byte()] = top(); break;                    // BINPUT
        case 'r': memo_[read_le32(bytes(4))] = top(); break;       // LONG_BINPUT
        case 0x94: memo_[uint32_t(memo_.size())] = top(); break;   // MEMOIZE
        case '0': pop(); break;                                    // POP
        case '2': push(top()); break;                              // DUP
        case 'c': {  // GLOBAL "module\nname\n"
          const std::string module = line(), name = line();
          push(global(module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          ValuePtr name = pop(), module = pop();
          if (module->kind != Kind::String || name->kind != Kind::String)
            fail("STACK_GLOBAL needs two strings", at);
          push(global(module->s, name->s));
          break;
        }
        case 'R': case 0x81: {  // REDUCE, NEWOBJ: callable(*args)
          ValuePtr args = pop(), callable = pop();
          push(call(*callable, *args, at));
          break;
        }
        case 'b': {  // BUILD: obj.__setstate__(state)
          ValuePtr state = pop();
          const Value& obj = *top();
          // An OrderedDict state dict may carry `_metadata` (module versions): not needed.
          if (obj.kind == Kind::Dict && (state->kind == Kind::Dict || state->kind == Kind::None))
            break;
          fail("BUILD on " + obj.describe() + " is not part of a state dict", at);
        }
        case 'Q': {  // BINPERSID
          ValuePtr pid = pop();
          if (!persistent_load_) fail("unexpected persistent id (BINPERSID)", at);
          push(persistent_load_(*pid, arena_));
          break;
        }
        case '.':  // STOP
          if (stack_.size() != 1 || !marks_.empty())
            fail("STOP with " + std::to_string(stack_.size()) + " values on the stack", at);
          *end = pos_;
          return stack_.back();
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          fail(std::string("unsupported pickle opcode ") + hex + " (" + opcode_name(op) +
                   "): only the opcodes torch.save writes are read",
               at);
        }
      }
    }
  }

 private:
  ValuePtr make(Kind k) { return arena_.make(k); }
  ValuePtr make_int(int64_t i) {
    ValuePtr v = make(Kind::Int);
    v->i = i;
    return v;
  }
  ValuePtr make_str(Kind k, std::string s) {
    ValuePtr v = make(k);
    v->s = std::move(s);
    return v;
  }

  [[noreturn]] void fail(const std::string& what, size_t at) {
    format_error(path_, "pickle at byte " + std::to_string(at) + ": " + what);
  }
  [[noreturn]] void truncated() {
    format_error(path_, "truncated pickle: data ends at byte " + std::to_string(size_) +
                            " before the STOP opcode");
  }
  const uint8_t* bytes(uint64_t n) {
    if (n > size_ - pos_) truncated();
    const uint8_t* b = p_ + pos_;
    pos_ += n;
    return b;
  }
  uint8_t byte() { return *bytes(1); }
  std::string sized(int len_bytes) {
    const uint8_t* l = bytes(len_bytes);
    const uint64_t n = len_bytes == 1 ? l[0] : len_bytes == 4 ? read_le32(l) : read_le64(l);
    const uint8_t* b = bytes(n);
    return std::string(reinterpret_cast<const char*>(b), n);
  }
  std::string line() {
    const uint8_t* nl =
        static_cast<const uint8_t*>(std::memchr(p_ + pos_, '\n', size_ - pos_));
    if (!nl) truncated();
    std::string s(reinterpret_cast<const char*>(p_ + pos_), nl - (p_ + pos_));
    pos_ = nl - p_ + 1;
    return s;
  }
  // Little-endian two's complement of n bytes; wider than 64 bits stays raw (BigInt).
  ValuePtr long_int(uint64_t n) {
    const uint8_t* b = bytes(n);
    if (n > 8) return make_str(Kind::BigInt, std::string(reinterpret_cast<const char*>(b), n));
    uint64_t u = 0;
    for (uint64_t k = 0; k < n; ++k) u |= uint64_t(b[k]) << (8 * k);
    if (n > 0 && n < 8 && (b[n - 1] & 0x80)) u |= ~uint64_t(0) << (8 * n);  // sign-extend
    return make_int(int64_t(u));
  }

  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back()))
      fail("stack underflow", pos_ - 1);
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  const ValuePtr& top() {
    if (stack_.empty()) fail("stack underflow", pos_ - 1);
    return stack_.back();
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) fail("no MARK for a collection opcode", pos_ - 1);
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> out(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return out;
  }
  Value& list_top(const char* op) {
    Value& v = *top();
    if (v.kind != Kind::List) fail(std::string(op) + " on " + v.describe(), pos_ - 1);
    return v;
  }
  Value& dict_top(const char* op) {
    Value& v = *top();
    if (v.kind != Kind::Dict) fail(std::string(op) + " on " + v.describe(), pos_ - 1);
    return v;
  }
  void set_items(Value& d, const std::vector<ValuePtr>& kv) {
    if (kv.size() % 2) fail("odd number of values for a dict", pos_ - 1);
    for (size_t k = 0; k < kv.size(); k += 2) d.entries.emplace_back(kv[k], kv[k + 1]);
  }
  ValuePtr memo_get(uint32_t i) {
    auto it = memo_.find(i);
    if (it == memo_.end()) fail("memo entry " + std::to_string(i) + " used before it is set", pos_);
    return it->second;
  }

  ValuePtr global(const std::string& module, const std::string& name) {
    if (!allowed_global(module, name)) {
      if (module == "torch" && name.size() > 7 && name.compare(name.size() - 7, 7, "Storage") == 0)
        format_error(path_, "unsupported storage type torch." + name +
                                " (hone reads Float, Double, Half, BFloat16, Long, Int, Short, "
                                "Char, Byte and Bool storages)");
      format_error(path_, "refusing to unpickle " + module + "." + name +
                              ": only tensors and containers of state dicts are allowed");
    }
    return make_str(Kind::Global, module + "." + name);
  }

  static bool is_int(const ValuePtr& v) { return v && v->kind == Kind::Int; }
  Shape int_tuple(const ValuePtr& v, const char* what, size_t at) {
    if (!v || (v->kind != Kind::Tuple && v->kind != Kind::List))
      fail(std::string(what) + " must be a tuple of ints, got " + (v ? v->describe() : "nothing"),
           at);
    Shape out;
    for (const auto& x : v->items) {
      if (!is_int(x)) fail(std::string(what) + " must be a tuple of ints", at);
      out.push_back(x->i);
    }
    return out;
  }

  // The allowed callables, interpreted.
  ValuePtr call(const Value& callable, const Value& args, size_t at) {
    if (callable.kind != Kind::Global)
      fail("call of " + callable.describe() + " (only allowed globals are callable)", at);
    if (args.kind != Kind::Tuple) fail("call of " + callable.s + " with non-tuple arguments", at);
    const std::string& f = callable.s;
    const auto& a = args.items;
    if (f == "collections.OrderedDict") {
      auto d = make(Kind::Dict);
      if (a.size() == 1 && a[0]->kind == Kind::List) {  // OrderedDict([(k, v), ...])
        for (const auto& kv : a[0]->items) {
          if ((kv->kind != Kind::Tuple && kv->kind != Kind::List) || kv->items.size() != 2)
            fail("OrderedDict items must be pairs", at);
          d->entries.emplace_back(kv->items[0], kv->items[1]);
        }
      } else if (!a.empty()) {
        fail("OrderedDict called with unexpected arguments", at);
      }
      return d;
    }
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
      // (storage, storage_offset, size, stride, [requires_grad, backward_hooks, [metadata]])
      if (a.size() < 4 || a[0]->kind != Kind::Storage || !is_int(a[1]))
        fail(f + " expects (storage, storage_offset, size, stride, ...)", at);
      auto t = std::make_shared<TensorRecord>();
      t->storage = a[0]->storage;
      t->storage_offset = a[0]->storage_view_offset + a[1]->i;
      t->size = int_tuple(a[2], "tensor size", at);
      t->stride = int_tuple(a[3], "tensor stride", at);
      if (t->size.size() != t->stride.size())
        fail("tensor size " + shape_str(t->size) + " and stride " + shape_str(t->stride) +
                 " differ in length",
             at);
      auto v = make(Kind::Tensor);
      v->tensor = std::move(t);
      return v;
    }
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty() || a[0]->kind != Kind::Tensor) fail(f + " expects a tensor first", at);
      return a[0];  // a Parameter is its data here; requires_grad is the trainer's business
    }
    if (f == "torch.Size") {
      if (a.size() != 1) fail("torch.Size expects one tuple", at);
      auto v = make(Kind::Tuple);
      v->items = a[0]->items;
      return v;
    }
    if (f == "_codecs.encode") {
      if (a.size() != 2 || a[0]->kind != Kind::String || a[1]->kind != Kind::String ||
          a[1]->s != "latin1")
        fail("_codecs.encode is only read as (str, 'latin1'), how protocol 2 stores bytes", at);
      // The str holds code points 0..255 as UTF-8; latin1 maps each back to one byte.
      std::string out;
      const std::string& s = a[0]->s;
      for (size_t k = 0; k < s.size(); ++k) {
        const uint8_t c = s[k];
        if (c < 0x80) {
          out += char(c);
        } else if ((c & 0xE0) == 0xC0 && k + 1 < s.size() && c <= 0xC3) {
          out += char(((c & 0x1F) << 6) | (uint8_t(s[++k]) & 0x3F));
        } else {
          fail("_codecs.encode: text is not latin1", at);
        }
      }
      return make_str(Kind::Bytes, std::move(out));
    }
    fail(f + " is not callable in a state dict", at);
  }

  const std::string& path_;
  const uint8_t* p_;
  size_t size_, pos_;
  const PersistentLoad& persistent_load_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, ValuePtr> memo_;
  Arena& arena_;
};

}  // namespace

std::string Value::describe() const {
  switch (kind) {
    case Kind::None: return "None";
    case Kind::Bool: return b ? "True" : "False";
    case Kind::Int: return "the int " + std::to_string(i);
    case Kind::BigInt: return "a big int";
    case Kind::Float: return "the float " + std::to_string(f);
    case Kind::String: return "the string '" + s.substr(0, 60) + "'";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "a tuple of " + std::to_string(items.size());
    case Kind::List: return "a list of " + std::to_string(items.size());
    case Kind::Dict: return "a dict of " + std::to_string(entries.size());
    case Kind::Global: return s;
    case Kind::Storage: return "a storage";
    case Kind::Tensor: return "a tensor";
  }
  return "?";
}

ValuePtr Value::get(const std::string& key) const {
  if (kind != Kind::Dict) return nullptr;
  ValuePtr found = nullptr;
  for (const auto& [k, v] : entries)
    if (k->kind == Kind::String && k->s == key) found = v;  // last wins, as in Python
  return found;
}

bool storage_type_info(const std::string& name, DType* dtype, size_t* file_elem_size) {
  for (const auto& t : kStorageTypes)
    if (name == t.name) {
      if (dtype) *dtype = t.dtype;
      if (file_elem_size) *file_elem_size = t.size;
      return true;
    }
  return false;
}

ValuePtr load(const std::string& path, const uint8_t* data, size_t size, size_t* pos,
              const PersistentLoad& persistent_load, Arena& arena) {
  if (*pos > size) format_error(path, "truncated: no pickle at byte " + std::to_string(*pos));
  return Machine(path, data, size, *pos, persistent_load, arena).run(pos);
}

}  // namespace hone::io::pickle
