// Small helpers shared by the subcommands: argument parsing and error reporting. Each command
// lives in its own cmd_<name>.cpp and registers itself in main.cpp's table.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace hone::cli {

// Parsed `--flag value` pairs, `--switch` booleans, positionals and `key=value` overrides.
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;
  std::vector<std::string> overrides;
  std::string command;

  // Throws std::invalid_argument naming the flag when missing or malformed.
  std::string str(const std::string& flag) const;
  std::string str(const std::string& flag, const std::string& fallback) const;
  int64_t integer(const std::string& flag, int64_t fallback) const;
  double number(const std::string& flag, double fallback) const;
  bool has(const std::string& flag) const { return flags.count(flag) > 0; }
};

// `value_flags` take a value; `switches` do not. Anything else starting with "--" is an error.
Args parse(const std::string& command, int argc, char** argv, const std::vector<std::string>& value_flags,
           const std::vector<std::string>& switches = {});

}  // namespace hone::cli
