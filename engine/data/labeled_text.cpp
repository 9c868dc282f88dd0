#include "engine/data/labeled_text.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "engine/data/text_sources.h"
#include "kernels/philox.h"

namespace hone::data {
namespace {

// ---- errors -------------------------------------------------------------------------------------

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

// `where` says where in the line, when known: "column 'label'" or "field 3" (before the header
// has given the fields names); empty otherwise.
[[noreturn]] void fail_at(const std::string& path, int64_t line, const std::string& where,
                          const std::string& what) {
  std::string msg = path + ": line " + std::to_string(line);
  if (!where.empty()) msg += ", " + where;
  throw std::runtime_error(msg + ": " + what);
}

std::string column_ref(const std::string& name) { return "column '" + name + "'"; }

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out;
}

// ---- reading the file
// -----------------------------------------------------------------------------

// The file's bytes without a leading byte order mark. UTF-8 is checked per field later, so that
// an error can name the line and column.
std::string read_bytes(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(path, "no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open for reading");
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) fail(path, "read error");
  std::string text = std::move(buf).str();
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
  return text;
}

std::string detect_format(const std::string& path, const std::string& format) {
  if (format == "csv" || format == "tsv" || format == "jsonl") return format;
  if (!format.empty())
    throw std::invalid_argument("read_labeled_text: unknown format '" + format +
                                "' (expected csv, tsv, jsonl or empty)");
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (ext == ".csv") return "csv";
  if (ext == ".tsv") return "tsv";
  if (ext == ".jsonl" || ext == ".json") return "jsonl";
  fail(path, "cannot tell the format from the extension '" + ext +
                 "'; set the format to csv, tsv or jsonl");
}

bool is_blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

void strip_trailing_cr(std::string& s) {
  while (!s.empty() && s.back() == '\r') s.pop_back();
}

// ---- CSV / TSV records
// ------------------------------------------------------------------------------

struct Record {
  int64_t line;  // 1-based line where the record starts
  std::vector<std::string> fields;
};

// RFC 4180. Unquoted fields run to the next comma or line end (a quote inside one is kept as a
// character, as Python's csv module does); quoted fields may hold commas, line breaks and "".
std::vector<Record> parse_csv(const std::string& path, const std::string& t) {
  std::vector<Record> records;
  const size_t n = t.size();
  size_t pos = 0;
  int64_t line = 1;
  while (pos < n) {
    Record rec{line, {}};
    bool any_quoted = false;
    for (;;) {  // one field per iteration
      std::string field;
      if (pos < n && t[pos] == '"') {
        any_quoted = true;
        const int64_t quote_line = line;
        ++pos;
        for (;;) {
          if (pos >= n)
            fail_at(path, quote_line, "field " + std::to_string(rec.fields.size() + 1),
                    "quoted field is never closed");
          const char c = t[pos];
          if (c == '"') {
            if (pos + 1 < n && t[pos + 1] == '"') {
              field += '"';
              pos += 2;
              continue;
            }
            ++pos;
            break;
          }
          if (c == '\n') ++line;
          field += c;
          ++pos;
        }
        const bool at_end = pos >= n || t[pos] == ',' || t[pos] == '\n' ||
                            (t[pos] == '\r' && (pos + 1 >= n || t[pos + 1] == '\n'));
        if (!at_end)
          fail_at(path, line, "field " + std::to_string(rec.fields.size() + 1),
                  "unexpected character after a closing quote (a quote inside a quoted field "
                  "must be doubled)");
      } else {
        const size_t end = t.find_first_of(",\n", pos);
        field.assign(t, pos, (end == std::string::npos ? n : end) - pos);
        pos = end == std::string::npos ? n : end;
        if (pos == n || t[pos] == '\n') strip_trailing_cr(field);  // the CR of a CRLF line end
      }
      rec.fields.push_back(std::move(field));
      if (pos < n && t[pos] == ',') {
        ++pos;
        if (pos < n) continue;
        rec.fields.emplace_back();
      }
      break;
    }
    // Line end: LF or CRLF (the CR after a closing quote is still here).
    if (pos < n && t[pos] == '\r') ++pos;
    if (pos < n && t[pos] == '\n') {
      ++pos;
      ++line;
    }
    const bool blank = !any_quoted && rec.fields.size() == 1 && is_blank(rec.fields[0]);
    if (!blank) records.push_back(std::move(rec));
  }
  return records;
}

// GLUE-style TSV: one record per line, tab-separated, no quoting.
std::vector<Record> parse_tsv(const std::string& t) {
  std::vector<Record> records;
  size_t pos = 0;
  for (int64_t line = 1; pos < t.size(); ++line) {
    size_t end = t.find('\n', pos);
    if (end == std::string::npos) end = t.size();
    std::string_view l(t.data() + pos, end - pos);
    pos = end + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (is_blank(l)) continue;
    Record rec{line, {}};
    size_t start = 0;
    for (;;) {
      const size_t tab = l.find('\t', start);
      rec.fields.emplace_back(
          l.substr(start, tab == std::string_view::npos ? l.npos : tab - start));
      if (tab == std::string_view::npos) break;
      start = tab + 1;
    }
    records.push_back(std::move(rec));
  }
  return records;
}

// ---- from records / JSON objects to raw examples
// -------------------------------------------------

// An example before its label is mapped to an id.
struct RawExample {
  int64_t line;
  std::string text, text_pair, label;
};

void check_utf8(const std::string& path, int64_t line, const std::string& column,
                const std::string& s) {
  if (const size_t bad = find_invalid_utf8(s); bad != std::string_view::npos)
    fail_at(path, line, column_ref(column),
            "not valid UTF-8 at byte offset " + std::to_string(bad) + " of the field");
}

// Index of the named column (or the 0-based index written as a string, without a header).
size_t find_column(const std::string& path, const Record& first, bool has_header,
                   const std::string& name) {
  if (has_header) {
    size_t found = first.fields.size();
    for (size_t i = 0; i < first.fields.size(); ++i) {
      if (first.fields[i] != name) continue;
      if (found != first.fields.size())
        fail_at(path, first.line, column_ref(name), "the header names this column twice");
      found = i;
    }
    if (found == first.fields.size())
      fail_at(path, first.line, column_ref(name),
              "no such column in the header (columns: " + join(first.fields) + ")");
    return found;
  }
  size_t index = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), index);
  if (ec != std::errc() || end != name.data() + name.size() || name.empty())
    fail_at(path, first.line, column_ref(name),
            "the file has no header, so columns are 0-based indices (\"0\", \"1\", ...)");
  if (index >= first.fields.size())
    fail_at(path, first.line, column_ref(name),
            "no such column: the records have " + std::to_string(first.fields.size()) + " fields");
  return index;
}

std::vector<RawExample> table_examples(const std::string& path, const std::vector<Record>& records,
                                       const LabeledTextOptions& o) {
  if (records.empty()) fail(path, "empty file");
  const Record& first = records.front();
  if (o.has_header)
    for (size_t i = 0; i < first.fields.size(); ++i)
      check_utf8(path, first.line, std::to_string(i), first.fields[i]);
  const size_t width = first.fields.size();
  const size_t text_col = find_column(path, first, o.has_header, o.text_column);
  const bool has_pair = !o.text_pair_column.empty(), has_label = !o.label_column.empty();
  const size_t pair_col = has_pair ? find_column(path, first, o.has_header, o.text_pair_column) : 0;
  const size_t label_col = has_label ? find_column(path, first, o.has_header, o.label_column) : 0;

  std::vector<RawExample> out;
  out.reserve(records.size());
  for (size_t r = o.has_header ? 1 : 0; r < records.size(); ++r) {
    const Record& rec = records[r];
    if (rec.fields.size() != width)
      fail_at(path, rec.line, "",
              "expected " + std::to_string(width) + " fields (as in line " +
                  std::to_string(first.line) + "), found " + std::to_string(rec.fields.size()));
    auto field = [&](size_t col, const std::string& name) {
      check_utf8(path, rec.line, name, rec.fields[col]);
      return rec.fields[col];
    };
    RawExample ex{rec.line, field(text_col, o.text_column), "", ""};
    if (has_pair) ex.text_pair = field(pair_col, o.text_pair_column);
    if (has_label) ex.label = field(label_col, o.label_column);
    out.push_back(std::move(ex));
  }
  if (out.empty()) fail(path, "no examples after the header");
  return out;
}

std::vector<RawExample> jsonl_examples(const std::string& path, const std::string& t,
                                       const LabeledTextOptions& o) {
  std::vector<RawExample> out;
  size_t pos = 0;
  for (int64_t line = 1; pos < t.size(); ++line) {
    size_t end = t.find('\n', pos);
    if (end == std::string::npos) end = t.size();
    const std::string_view l(t.data() + pos, end - pos);
    pos = end + 1;
    if (is_blank(l)) continue;
    // Checked before parsing: the JSON parser's own message would not say where the byte is.
    if (const size_t bad = find_invalid_utf8(l); bad != std::string_view::npos)
      fail_at(path, line, "",
              "not valid UTF-8 at byte offset " + std::to_string(bad) + " of the line");
    nlohmann::json obj;
    try {
      obj = nlohmann::json::parse(l);
    } catch (const nlohmann::json::parse_error& e) {
      fail_at(path, line, "", std::string("not valid JSON (") + e.what() + ")");
    }
    if (!obj.is_object())
      fail_at(path, line, "", std::string("expected a JSON object, got ") + obj.type_name());
    auto member = [&](const std::string& name) -> const nlohmann::json& {
      const auto it = obj.find(name);
      if (it == obj.end()) fail_at(path, line, column_ref(name), "no such field in the object");
      return *it;
    };
    auto text = [&](const std::string& name) {
      const nlohmann::json& v = member(name);
      if (!v.is_string())
        fail_at(path, line, column_ref(name),
                std::string("is a ") + v.type_name() + ", expected a string");
      return v.get<std::string>();
    };
    RawExample ex{line, text(o.text_column), "", ""};
    if (!o.text_pair_column.empty()) ex.text_pair = text(o.text_pair_column);
    if (!o.label_column.empty()) {
      const nlohmann::json& v = member(o.label_column);
      // Numbers become their JSON text, so that the label rules below treat 3, "3" and a CSV's 3
      // the same, and 1.5 is refused as not an integer.
      if (v.is_string())
        ex.label = v.get<std::string>();
      else if (v.is_number())
        ex.label = v.dump();
      else
        fail_at(path, line, column_ref(o.label_column),
                std::string("label is a ") + v.type_name() + ", expected a string or an integer");
    }
    out.push_back(std::move(ex));
  }
  if (out.empty()) fail(path, "empty file");
  return out;
}

// ---- labels
// -----------------------------------------------------------------------------------------

std::string trim_label(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// A number as a person would write one: digits with an optional sign, point and exponent (not
// "nan" or "inf", which are more likely class names).
bool looks_numeric(const std::string& s) {
  if (s.empty() ||
      !(std::isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+' || s[0] == '.'))
    return false;
  const char* b = s.data() + (s[0] == '+' ? 1 : 0);
  double v = 0;
  const auto [end, ec] = std::from_chars(b, s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size();
}

// Parses the whole of s as an integer with an optional sign.
std::from_chars_result parse_int(const std::string& s, int64_t& v) {
  const char* b = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
  auto r = std::from_chars(b, s.data() + s.size(), v);
  if (r.ec == std::errc() && r.ptr != s.data() + s.size()) r.ec = std::errc::invalid_argument;
  return r;
}

// The label as a non-negative integer, or -1 when it is not one.
int64_t as_index(const std::string& s) {
  int64_t v = -1;
  return parse_int(s, v).ec == std::errc() && v >= 0 ? v : -1;
}

// Guard against reading an id or a score column as the label: that would make millions of classes.
constexpr int64_t kMaxIntegerLabel = 1'000'000;

LabeledDataset assign_labels(const std::string& path, std::vector<RawExample> raw,
                             const LabeledTextOptions& o) {
  LabeledDataset d;
  d.examples.reserve(raw.size());
  const std::string col = column_ref(o.label_column);
  auto add = [&](RawExample& r, int64_t label) {
    strip_trailing_cr(r.text);
    strip_trailing_cr(r.text_pair);
    d.examples.push_back({std::move(r.text), std::move(r.text_pair), label});
  };
  if (o.label_column.empty()) {
    d.label_names = o.label_names;
    for (RawExample& r : raw) add(r, -1);
    return d;
  }
  for (RawExample& r : raw) {
    r.label = trim_label(r.label);
    if (r.label.empty()) fail_at(path, r.line, col, "empty label");
  }

  if (!o.label_names.empty()) {
    d.label_names = o.label_names;
    std::map<std::string, int64_t> id;
    for (size_t i = 0; i < o.label_names.size(); ++i)
      if (!id.emplace(o.label_names[i], int64_t(i)).second)
        throw std::invalid_argument("read_labeled_text: label_names has '" + o.label_names[i] +
                                    "' twice");
    const int64_t K = d.num_labels();
    for (RawExample& r : raw) {
      const auto it = id.find(r.label);
      int64_t label = it != id.end() ? it->second : as_index(r.label);
      if (label < 0 || label >= K)
        fail_at(path, r.line, col,
                "unknown label '" + r.label + "' (label_names: " + join(o.label_names) + ")");
      add(r, label);
    }
    return d;
  }

  const bool numeric = std::all_of(raw.begin(), raw.end(),
                                   [](const RawExample& r) { return looks_numeric(r.label); });
  if (numeric) {
    std::vector<int64_t> labels(raw.size());
    int64_t max_label = 0;
    for (size_t i = 0; i < raw.size(); ++i) {
      const std::string& s = raw[i].label;
      const std::errc ec = parse_int(s, labels[i]).ec;
      if (ec == std::errc::result_out_of_range ||
          (ec == std::errc() && labels[i] > kMaxIntegerLabel))
        fail_at(path, raw[i].line, col,
                "label " + s + " is too large for a class id (is this the label column?)");
      if (ec != std::errc()) fail_at(path, raw[i].line, col, "label " + s + " is not an integer");
      if (labels[i] < 0)
        fail_at(path, raw[i].line, col,
                "negative label " + s +
                    " (integer labels are class ids 0..K-1; list the labels "
                    "in label_names to use them as names)");
      max_label = std::max(max_label, labels[i]);
    }
    for (int64_t k = 0; k <= max_label; ++k) d.label_names.push_back(std::to_string(k));
    for (size_t i = 0; i < raw.size(); ++i) add(raw[i], labels[i]);
    return d;
  }

  std::map<std::string, int64_t> id;  // sorted by name: the discovered order
  for (const RawExample& r : raw) id.emplace(r.label, 0);
  for (auto& [name, i] : id) {
    i = d.num_labels();
    d.label_names.push_back(name);
  }
  for (RawExample& r : raw) add(r, id.at(r.label));
  return d;
}

// ---- randomness
// -------------------------------------------------------------------------------------

// 64 random bits for counter (a, b) under key `seed`: one Philox block, no state to carry.
uint64_t philox_bits(uint64_t seed, uint64_t a, uint64_t b) {
  const philox::U32x4 r =
      philox::philox4x32_10({{uint32_t(a), uint32_t(a >> 32), uint32_t(b), uint32_t(b >> 32)}},
                            uint32_t(seed), uint32_t(seed >> 32));
  return uint64_t(r.v[0]) | (uint64_t(r.v[1]) << 32);
}

// Fisher-Yates shuffle of v whose draws come from the Philox stream (seed, stream).
void philox_shuffle(std::vector<int64_t>& v, uint64_t seed, uint64_t stream) {
  for (size_t i = v.size(); i > 1; --i) {
    // Lemire's multiply-shift maps 64 random bits onto [0, i); the bias (i / 2^64) is negligible.
    const size_t j = size_t((unsigned __int128)philox_bits(seed, i, stream) * i >> 64);
    std::swap(v[i - 1], v[j]);
  }
}

// The split's streams sit in the top half of the counter space, so they never coincide with a
// sampler's epoch streams under the same seed.
constexpr uint64_t kSplitStream = uint64_t(1) << 63;

}  // namespace

LabeledDataset read_labeled_text(const std::string& path, const LabeledTextOptions& o) {
  const std::string format = detect_format(path, o.format);
  if (o.text_column.empty()) throw std::invalid_argument("read_labeled_text: empty text_column");
  const std::string text = read_bytes(path);
  if (is_blank(text)) fail(path, "empty file");
  std::vector<RawExample> raw;
  if (format == "jsonl")
    raw = jsonl_examples(path, text, o);
  else if (format == "csv")
    raw = table_examples(path, parse_csv(path, text), o);
  else
    raw = table_examples(path, parse_tsv(text), o);
  return assign_labels(path, std::move(raw), o);
}

std::pair<LabeledDataset, LabeledDataset> split_dataset(const LabeledDataset& d,
                                                        double val_fraction, uint64_t seed,
                                                        bool stratify) {
  if (!(val_fraction >= 0 && val_fraction < 1))
    throw std::invalid_argument("split_dataset: val_fraction must be in [0, 1), got " +
                                std::to_string(val_fraction));
  const int64_t n = static_cast<int64_t>(d.examples.size());
  int64_t n_val = std::llround(val_fraction * double(n));
  if (val_fraction > 0 && n >= 2)
    n_val = std::clamp<int64_t>(n_val, 1, n - 1);
  else if (n < 2)
    n_val = 0;

  // Groups to draw from: one per label when stratifying (unlabelled -1 examples form their own).
  std::map<int64_t, std::vector<int64_t>> groups;
  for (int64_t i = 0; i < n; ++i) groups[stratify ? d.examples[size_t(i)].label : 0].push_back(i);

  // Each group's share of val: the floor of its quota n_val * size / n, then the leftover seats
  // to the largest remainders (ties to the smaller label), so the shares add up to n_val exactly.
  // Integer arithmetic, so that the shares cannot depend on floating-point rounding.
  std::vector<int64_t> take, remainder;
  int64_t assigned = 0;
  for (const auto& [label, members] : groups) {
    const int64_t scaled = n_val * int64_t(members.size());
    take.push_back(scaled / n);
    remainder.push_back(scaled % n);
    assigned += take.back();
  }
  std::vector<size_t> by_remainder(take.size());
  for (size_t k = 0; k < by_remainder.size(); ++k) by_remainder[k] = k;
  std::stable_sort(by_remainder.begin(), by_remainder.end(),
                   [&](size_t a, size_t b) { return remainder[a] > remainder[b]; });
  for (size_t k = 0; assigned < n_val; ++k, ++assigned) ++take[by_remainder[k]];

  std::vector<char> in_val(size_t(n), 0);
  size_t g = 0;
  for (const auto& [label, members] : groups) {
    std::vector<int64_t> order = members;
    philox_shuffle(order, seed, kSplitStream + uint64_t(label + 1));
    for (int64_t k = 0; k < take[g]; ++k) in_val[size_t(order[size_t(k)])] = 1;
    ++g;
  }

  std::pair<LabeledDataset, LabeledDataset> out;
  out.first.label_names = out.second.label_names = d.label_names;
  for (int64_t i = 0; i < n; ++i)
    (in_val[size_t(i)] ? out.second : out.first).examples.push_back(d.examples[size_t(i)]);
  return out;
}

// ---- ExampleSampler
// ---------------------------------------------------------------------------------

ExampleSampler::ExampleSampler(int64_t n, uint64_t seed, bool shuffle)
    : n_(n), seed_(seed), shuffle_(shuffle) {
  if (n < 1) throw std::invalid_argument("ExampleSampler: needs at least one example");
}

std::vector<int64_t> ExampleSampler::epoch_order(int64_t e) const {
  std::vector<int64_t> order(static_cast<size_t>(n_));
  for (int64_t i = 0; i < n_; ++i) order[size_t(i)] = i;
  if (shuffle_) philox_shuffle(order, seed_, uint64_t(e));
  return order;
}

std::vector<int64_t> ExampleSampler::next_batch(int64_t B) {
  if (B < 1) throw std::invalid_argument("ExampleSampler::next_batch: B must be >= 1");
  std::vector<int64_t> batch;
  batch.reserve(size_t(B));
  while (int64_t(batch.size()) < B) {
    if (cached_epoch_ != epoch()) {
      order_ = epoch_order(epoch());
      cached_epoch_ = epoch();
    }
    batch.push_back(order_[size_t(offset_in_epoch())]);
    ++position_;
  }
  return batch;
}

void ExampleSampler::restore(int64_t position) {
  if (position < 0) throw std::invalid_argument("ExampleSampler::restore: negative position");
  position_ = position;
}

}  // namespace hone::data
