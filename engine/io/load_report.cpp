#include "engine/io/load_report.h"

#include <sstream>
#include <stdexcept>

namespace hone::io {

std::string describe_tensor(const Tensor& t) {
  return std::string(dtype_name(t.dtype())) + shape_str(t.shape());
}

std::string LoadReport::summary() const {
  std::ostringstream out;
  out << "applied " << applied.size() << ", missing " << missing.size() << ", unexpected "
      << unexpected.size() << ", shape mismatches " << mismatched.size();
  auto list = [&](const char* what, const std::vector<std::string>& names) {
    const size_t shown = std::min<size_t>(names.size(), 20);
    for (size_t i = 0; i < shown; ++i) out << "\n  " << what << ": " << names[i];
    if (names.size() > shown) out << "\n  " << what << ": ... and " << names.size() - shown << " more";
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("mismatched", mismatched);
  return out.str();
}

LoadReport compare_state_dicts(const StateDict& model, const StateDict& checkpoint) {
  LoadReport r;
  for (const auto& [name, t] : model) {
    auto it = checkpoint.find(name);
    if (it == checkpoint.end())
      r.missing.push_back(name);
    else if (it->second.shape() != t.shape())
      r.mismatched.push_back(name + ": checkpoint " + describe_tensor(it->second) + " vs model " +
                             describe_tensor(t));
    else
      r.applied.push_back(name);
  }
  for (const auto& [name, t] : checkpoint)
    if (!model.count(name)) r.unexpected.push_back(name);
  return r;
}

StateDict strip_prefixes(const StateDict& sd, const std::vector<std::string>& prefixes) {
  StateDict out;
  std::map<std::string, std::string> origin;
  for (const auto& [name, t] : sd) {
    std::string n = name;
    for (bool stripped = true; stripped;) {
      stripped = false;
      for (const auto& p : prefixes)
        if (!p.empty() && n.size() > p.size() && n.compare(0, p.size(), p) == 0) {
          n.erase(0, p.size());
          stripped = true;
        }
    }
    if (!origin.emplace(n, name).second)
      throw std::invalid_argument("strip_prefixes: '" + origin[n] + "' and '" + name +
                                  "' both become '" + n + "'");
    out[n] = t;
  }
  return out;
}

}  // namespace hone::io
