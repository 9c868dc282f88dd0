#include "engine/data/text_sources.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace hone::data {
namespace fs = std::filesystem;

size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  auto cont = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < n && s[i] >= lo && s[i] <= hi;
  };
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) { ++i; continue; }
    // The ranges of Unicode's Table 3-7 ("well-formed UTF-8 byte sequences"): the narrowed second
    // byte ranges after E0, ED, F0 and F4 are what exclude overlongs, surrogates and > U+10FFFF.
    size_t len = 0;
    if (c >= 0xC2 && c <= 0xDF) len = cont(i + 1) ? 2 : 0;
    else if (c == 0xE0) len = cont(i + 1, 0xA0, 0xBF) && cont(i + 2) ? 3 : 0;
    else if (c == 0xED) len = cont(i + 1, 0x80, 0x9F) && cont(i + 2) ? 3 : 0;
    else if (c >= 0xE1 && c <= 0xEF) len = cont(i + 1) && cont(i + 2) ? 3 : 0;
    else if (c == 0xF0) len = cont(i + 1, 0x90, 0xBF) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    else if (c >= 0xF1 && c <= 0xF3) len = cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    else if (c == 0xF4) len = cont(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

// The whole file, checked to be UTF-8, without a leading byte order mark.
std::string read_utf8_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open for reading");
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) fail(path, "read error");
  std::string text = std::move(buf).str();
  if (const size_t bad = find_invalid_utf8(text); bad != std::string_view::npos)
    fail(path, "not valid UTF-8 at byte offset " + std::to_string(bad));
  // Checked after validation so that the reported offset is an offset into the file as stored.
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
  return text;
}

bool is_blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](unsigned char c) { return std::isspace(c); });
}

std::vector<std::string> read_jsonl(const std::string& path, const std::string& field) {
  const std::string text = read_utf8_file(path);
  std::vector<std::string> docs;
  size_t pos = 0;
  for (int64_t line_no = 1; pos < text.size(); ++line_no) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    if (is_blank(line)) continue;
    const std::string where = "line " + std::to_string(line_no) + ": ";
    nlohmann::json obj;
    try {
      obj = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      fail(path, where + "not valid JSON (" + e.what() + ")");
    }
    if (!obj.is_object()) fail(path, where + "expected a JSON object, got " + obj.type_name());
    const auto it = obj.find(field);
    if (it == obj.end()) fail(path, where + "no \"" + field + "\" field");
    if (!it->is_string())
      fail(path, where + "field \"" + field + "\" is a " + it->type_name() + ", expected a string");
    docs.push_back(it->get<std::string>());
  }
  return docs;
}

bool is_jsonl(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jsonl" || ext == ".jsonlines" || ext == ".ndjson";
}

}  // namespace

std::vector<std::string> read_documents(const std::string& path, const std::string& text_field) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail(path, "no such file or folder");

  if (fs::is_directory(st)) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(path))
      if (entry.path().extension() == ".txt" && entry.is_regular_file()) files.push_back(entry.path());
    if (files.empty()) fail(path, "folder holds no *.txt files");
    // Sorted so that the document order (and with it the train/val split) does not depend on the
    // file system's directory order.
    std::sort(files.begin(), files.end(),
              [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
    std::vector<std::string> docs;
    docs.reserve(files.size());
    for (const auto& f : files) docs.push_back(read_utf8_file(f.string()));
    return docs;
  }
  if (is_jsonl(path)) return read_jsonl(path, text_field);
  return {read_utf8_file(path)};
}

}  // namespace hone::data
