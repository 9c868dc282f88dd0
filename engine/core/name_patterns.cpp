#include "engine/core/name_patterns.h"

#include <algorithm>
#include <regex>
#include <tuple>
#include <stdexcept>

namespace hone {

namespace {

bool is_glob(const std::string& p) {
  return p.find_first_of("\\[](){}+^$|") == std::string::npos;
}

bool glob_match(const char* p, const char* s) {
  // Iterative glob with backtracking over the last '*'.
  const char *star = nullptr, *resume = nullptr;
  while (*s) {
    if (*p == '?' || *p == *s) {
      ++p, ++s;
    } else if (*p == '*') {
      star = p++;
      resume = s;
    } else if (star) {
      p = star + 1;
      s = ++resume;
    } else {
      return false;
    }
  }
  while (*p == '*') ++p;
  return *p == '\0';
}

}  // namespace

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool name_matches(const std::string& pattern, const std::string& name) {
  if (is_glob(pattern)) return glob_match(pattern.c_str(), name.c_str());
  try {
    return std::regex_match(name, std::regex(pattern));
  } catch (const std::regex_error& e) {
    throw std::invalid_argument("pattern '" + pattern + "' is not a valid regular expression: " + e.what());
  }
}

std::vector<std::string> closest_names(const std::string& pattern, const std::vector<std::string>& names, size_t n) {
  std::string bare;
  for (char c : pattern)
    if (c != '*' && c != '?' && c != '\\' && c != '^' && c != '$') bare += c;
  // Patterns name a prefix or a part of the name ("h.0.atn.*"): compare with the name's prefix of
  // the same length first, then with the whole name.
  std::vector<std::tuple<size_t, size_t, std::string>> scored;
  for (const std::string& name : names)
    scored.emplace_back(edit_distance(bare, name.substr(0, bare.size())), edit_distance(bare, name), name);
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && out.size() < n; ++i) out.push_back(std::get<2>(scored[i]));
  return out;
}

void require_match(const std::string& what, const std::string& pattern, const std::vector<std::string>& names) {
  for (const std::string& n : names)
    if (name_matches(pattern, n)) return;
  std::string msg = what + ": pattern '" + pattern + "' matches no name; closest:";
  for (const std::string& c : closest_names(pattern, names)) msg += " " + c;
  throw std::invalid_argument(msg);
}

}  // namespace hone
