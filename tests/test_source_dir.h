// Where the tests read their fixtures and the shared data from. Force-included into every test
// program (tests/CMakeLists.txt), so each `HONE_SOURCE_DIR` in a test means: $HONE_SOURCE_DIR
// when set (the same tree copied elsewhere, e.g. the GPU machine of tools/device-check.sh, where
// the programs built here run), else the source tree they were built from.
#pragma once
#include <cstdlib>

inline const char* hone_test_source_dir() {
  const char* env = std::getenv("HONE_SOURCE_DIR");
  return env && *env ? env : HONE_SOURCE_DIR_BUILT;
}
#define HONE_SOURCE_DIR hone_test_source_dir()
