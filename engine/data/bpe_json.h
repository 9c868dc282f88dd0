// A small strict JSON reader for tokenizer files (vocab.json / encoder.json) and test fixtures.
// Why not a library: hone has no third-party run-time dependencies, and the tokenizer needs
// only parsing with good error messages (file and line), not writing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hone::json {

struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0.0;
  bool is_integer = false;  // the literal had no fraction or exponent and fits in int64
  int64_t integer = 0;
  int line = 0;             // 1-based line where the value starts, for error messages
  std::string string;
  std::vector<Value> array;
  std::vector<std::pair<std::string, Value>> object;  // in file order; duplicate keys rejected
};

// Parses a whole document. Throws std::runtime_error "<source>:<line>: <what>" on malformed
// input (including trailing garbage, unpaired surrogates in \u escapes and raw control chars).
Value parse(std::string_view text, const std::string& source);

// Reads a file and parses it; a missing/unreadable file throws std::runtime_error naming it.
Value parse_file(const std::string& path);

// Whole-file read shared by the tokenizer loaders; throws std::runtime_error naming the path.
std::string read_file(const std::string& path);

}  // namespace hone::json
