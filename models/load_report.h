// What happened when a checkpoint was applied to a model: applied, missing and unexpected keys,
// known non-parameters that were skipped, and notes (a new head, a remapped legacy name).
#pragma once
#include <sstream>
#include <string>
#include <vector>

namespace hone::models {

struct ModelLoadReport {
  std::vector<std::string> applied, missing, unexpected, ignored;
  std::vector<std::string> notes;

  std::string summary() const {
    std::ostringstream os;
    os << applied.size() << " tensors applied";
    if (!ignored.empty()) os << ", " << ignored.size() << " non-parameters ignored";
    auto list = [&](const char* what, const std::vector<std::string>& v) {
      if (v.empty()) return;
      os << ", " << v.size() << " " << what << ":";
      for (size_t i = 0; i < v.size() && i < 5; ++i) os << " " << v[i];
      if (v.size() > 5) os << " ...";
    };
    list("unexpected", unexpected);
    list("missing", missing);
    for (const std::string& n : notes) os << "; " << n;
    return os.str();
  }
};

}  // namespace hone::models
