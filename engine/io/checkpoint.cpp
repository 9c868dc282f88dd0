// load_checkpoint: which reader a path needs, including Hugging Face model folders and sharded
// checkpoints (an index.json whose "weight_map" names the shard file of each tensor).
#include <nlohmann/json.hpp>
#include <cstring>
#include <fstream>
#include <set>
#include <sys/stat.h>

#include "engine/io/checkpoint.h"
#include "engine/io/mapped_file.h"

namespace hone::io {
namespace {

bool exists(const std::string& p, bool* is_dir = nullptr) {
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) return false;
  if (is_dir) *is_dir = S_ISDIR(st.st_mode);
  return true;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

StateDict load_sharded(const std::string& index_path) {
  nlohmann::json doc;
  {
    std::ifstream in(index_path);
    if (!in) format_error(index_path, "cannot open");
    try {
      doc = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      format_error(index_path, std::string("not valid JSON: ") + e.what());
    }
  }
  auto wm = doc.find("weight_map");
  if (!doc.is_object() || wm == doc.end() || !wm->is_object())
    format_error(index_path, "expected an object with a \"weight_map\" of tensor name -> file");
  const size_t slash = index_path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : index_path.substr(0, slash);

  std::map<std::string, std::vector<std::string>> by_file;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it->is_string())
      format_error(index_path, "weight_map[\"" + it.key() + "\"] must be a file name");
    const std::string file = it->get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos || file == "..")
      format_error(index_path, "weight_map[\"" + it.key() + "\"] = \"" + file +
                                   "\" must name a file in the same folder");
    by_file[file].push_back(it.key());
  }
  StateDict out;
  for (const auto& [file, names] : by_file) {
    const std::string shard_path = dir + "/" + file;
    StateDict shard = load_checkpoint(shard_path);
    for (const auto& n : names) {
      auto t = shard.find(n);
      if (t == shard.end())
        format_error(index_path, "tensor '" + n + "' is mapped to " + file + ", which lacks it");
      out[n] = t->second;
    }
  }
  return out;
}

}  // namespace

StateDict load_checkpoint(const std::string& path) {
  bool is_dir = false;
  if (!exists(path, &is_dir)) format_error(path, "no such file or directory");
  if (is_dir) {
    for (const char* name : {"model.safetensors", "model.safetensors.index.json",
                             "pytorch_model.bin", "pytorch_model.bin.index.json"}) {
      const std::string p = path + "/" + name;
      if (exists(p)) return load_checkpoint(p);
    }
    format_error(path, "folder has none of model.safetensors, model.safetensors.index.json, "
                       "pytorch_model.bin, pytorch_model.bin.index.json");
  }
  if (ends_with(path, ".index.json")) return load_sharded(path);

  uint8_t head[9] = {};
  {
    auto f = MappedFile::open(path);
    if (f->size() < 2) format_error(path, "too short to be a checkpoint");
    std::memcpy(head, f->data(), std::min<size_t>(sizeof head, f->size()));
  }
  if (std::memcmp(head, "PK\x03\x04", 4) == 0 || head[0] == 0x80) return load_torch(path);
  if (head[8] == '{') return load_safetensors(path);
  if (std::memcmp(head, "\x93NUMPY", 6) == 0)
    format_error(path, "is a .npy array, not a checkpoint (read it with load_npy)");
  format_error(path, "unrecognised checkpoint format: expected safetensors (8-byte length, then "
                     "'{'), a PyTorch zip archive ('PK') or a legacy PyTorch pickle (0x80)");
}

}  // namespace hone::io
