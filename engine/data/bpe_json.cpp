#include "engine/data/bpe_json.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

#include "engine/data/unicode_class.h"

namespace hone::json {
namespace {

class Parser {
 public:
  Parser(std::string_view text, const std::string& source) : s_(text), source_(source) {}

  Value document() {
    skip_ws();
    Value v = value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  // Deep nesting is never legitimate in tokenizer files; the limit keeps recursion bounded.
  static constexpr int kMaxDepth = 256;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(source_ + ":" + std::to_string(line_) + ": malformed JSON: " + what);
  }

  void skip_ws() {
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '\n') ++line_;
      else if (c != ' ' && c != '\t' && c != '\r') break;
      ++pos_;
    }
  }

  char peek() {
    if (pos_ >= s_.size()) fail("unexpected end of input (truncated file?)");
    return s_[pos_];
  }

  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "', found '" + s_[pos_] + "'");
    ++pos_;
  }

  Value value(int depth) {
    if (depth > kMaxDepth) fail("nesting too deep");
    Value v;
    v.line = line_;
    const char c = peek();
    if (c == '{') {
      v.kind = Value::Kind::Object;
      ++pos_;
      skip_ws();
      if (peek() == '}') { ++pos_; return v; }
      std::unordered_set<std::string> seen;
      for (;;) {
        skip_ws();
        if (peek() != '"') fail("expected a string key");
        std::string key = string_literal();
        if (!seen.insert(key).second) fail("duplicate key \"" + key + "\"");
        skip_ws();
        expect(':');
        skip_ws();
        v.object.emplace_back(std::move(key), value(depth + 1));
        skip_ws();
        if (peek() == ',') { ++pos_; continue; }
        expect('}');
        return v;
      }
    }
    if (c == '[') {
      v.kind = Value::Kind::Array;
      ++pos_;
      skip_ws();
      if (peek() == ']') { ++pos_; return v; }
      for (;;) {
        skip_ws();
        v.array.push_back(value(depth + 1));
        skip_ws();
        if (peek() == ',') { ++pos_; continue; }
        expect(']');
        return v;
      }
    }
    if (c == '"') {
      v.kind = Value::Kind::String;
      v.string = string_literal();
      return v;
    }
    if (literal("true")) { v.kind = Value::Kind::Bool; v.boolean = true; return v; }
    if (literal("false")) { v.kind = Value::Kind::Bool; return v; }
    if (literal("null")) return v;
    if (c == '-' || (c >= '0' && c <= '9')) return number(v);
    fail(std::string("unexpected character '") + c + "'");
  }

  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Value number(Value v) {
    v.kind = Value::Kind::Number;
    const size_t start = pos_;
    bool integral = true;
    if (s_[pos_] == '-') ++pos_;
    auto digits = [&] {
      const size_t d = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      if (pos_ == d) fail("malformed number");
    };
    if (peek() == '0') ++pos_;
    else digits();
    if (pos_ < s_.size() && s_[pos_] == '.') { integral = false; ++pos_; digits(); }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      digits();
    }
    const std::string text(s_.substr(start, pos_ - start));
    v.number = std::strtod(text.c_str(), nullptr);
    if (integral && text.size() <= 18) {  // 18 digits always fit in int64
      v.is_integer = true;
      v.integer = std::strtoll(text.c_str(), nullptr, 10);
    }
    return v;
  }

  unsigned hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else fail("bad hex digit in \\u escape");
    }
    return v;
  }

  std::string string_literal() {
    expect('"');
    std::string out;
    for (;;) {
      const char c = peek();
      if (c == '"') { ++pos_; return out; }
      if (static_cast<unsigned char>(c) < 0x20) fail("raw control character in string (truncated line?)");
      if (c != '\\') {
        // Copy a run of plain bytes at once; the file's UTF-8 is validated by the caller.
        const size_t start = pos_;
        while (pos_ < s_.size() && s_[pos_] != '"' && s_[pos_] != '\\' &&
               static_cast<unsigned char>(s_[pos_]) >= 0x20)
          ++pos_;
        out.append(s_.substr(start, pos_ - start));
        continue;
      }
      ++pos_;
      const char e = peek();
      ++pos_;
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          char32_t cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // high surrogate: a low one must follow
            if (s_.substr(pos_, 2) != "\\u") fail("unpaired surrogate in \\u escape");
            pos_ += 2;
            const char32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("unpaired surrogate in \\u escape");
          }
          utf8_append(out, cp);
          break;
        }
        default: fail(std::string("bad escape '\\") + e + "'");
      }
    }
  }

  std::string_view s_;
  const std::string& source_;
  size_t pos_ = 0;
  int line_ = 1;
};

}  // namespace

Value parse(std::string_view text, const std::string& source) {
  const size_t bad = utf8_first_invalid(text);
  if (bad != std::string_view::npos) {
    int line = 1;
    for (size_t i = 0; i < bad; ++i) line += text[i] == '\n';
    throw std::runtime_error(source + ":" + std::to_string(line) + ": invalid UTF-8 at byte " +
                             std::to_string(bad));
  }
  return Parser(text, source).document();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path + ": read error");
  return std::move(ss).str();
}

Value parse_file(const std::string& path) { return parse(read_file(path), path); }

}  // namespace hone::json
