// Running the built `hone` binary from the tool tests, as a user's shell would.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace hone::testing_cli {

// The hone binary of this build tree (tests/../tools/hone).
inline std::filesystem::path hone_binary() {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() / "tools" / "hone";
}

// Runs `cmd` through the shell; returns its exit status, and its stdout and stderr together in
// *output when given.
inline int run(const std::string& cmd, std::string* output = nullptr) {
  namespace fs = std::filesystem;
  const std::string log = (fs::temp_directory_path() / ("hone-cli-" + std::to_string(::getpid()) + ".log")).string();
  const int rc = std::system((cmd + " > " + log + " 2>&1").c_str());
  std::ifstream f(log);
  std::stringstream ss;
  ss << f.rdbuf();
  if (output) *output = ss.str();
  fs::remove(log);
  return WEXITSTATUS(rc);
}

}  // namespace hone::testing_cli
