#include "tools/cli.h"

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <cstdlib>
#include <stdexcept>

namespace hone::cli {

namespace {
// "optimizer.lr=3e-4": a dotted identifier, '=', a value (which may contain anything).
bool is_override(const std::string& s) {
  const size_t eq = s.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  return std::all_of(s.begin(), s.begin() + eq, [](char c) { return std::isalnum((unsigned char)c) || c == '_' || c == '.'; });
}
}  // namespace

Args parse(const std::string& command, int argc, char** argv, const std::vector<std::string>& value_flags,
           const std::vector<std::string>& switches) {
  Args a;
  a.command = command;
  for (int i = 0; i < argc; ++i) {
    const std::string s = argv[i];
    if (s.rfind("--", 0) == 0) {
      const std::string name = s.substr(2);
      if (std::find(switches.begin(), switches.end(), name) != switches.end()) {
        a.flags[name] = "true";
      } else if (std::find(value_flags.begin(), value_flags.end(), name) != value_flags.end()) {
        if (i + 1 >= argc) throw std::invalid_argument(s + " needs a value");
        a.flags[name] = argv[++i];
      } else {
        throw std::invalid_argument("unknown option " + s);
      }
    } else if (is_override(s)) {
      a.overrides.push_back(s);
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

std::string Args::str(const std::string& flag) const {
  auto it = flags.find(flag);
  if (it == flags.end()) throw std::invalid_argument("--" + flag + " is required");
  return it->second;
}

std::string Args::str(const std::string& flag, const std::string& fallback) const {
  auto it = flags.find(flag);
  return it == flags.end() ? fallback : it->second;
}

int64_t Args::integer(const std::string& flag, int64_t fallback) const {
  auto it = flags.find(flag);
  if (it == flags.end()) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end || errno) throw std::invalid_argument("--" + flag + " expects an integer, got '" + it->second + "'");
  return v;
}

double Args::number(const std::string& flag, double fallback) const {
  auto it = flags.find(flag);
  if (it == flags.end()) return fallback;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end) throw std::invalid_argument("--" + flag + " expects a number, got '" + it->second + "'");
  return v;
}

}  // namespace hone::cli
