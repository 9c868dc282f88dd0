#include <cstdio>

#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/model_source.h"

namespace hone::cli {

int cmd_export(int argc, char** argv) {
  const Args a = parse("export", argc, argv, {"out"});
  if (a.positional.size() != 1) throw std::invalid_argument("expected one run or model folder");
  const auto m = open_gpt2(a.positional[0], false);
  const std::string out = a.str("out");
  models::export_gpt2_hf(*m.model, out);
  copy_tokenizer_files(a.positional[0], out);
  std::printf("exported %s -> %s (config.json, model.safetensors, tokenizer files)\n", a.positional[0].c_str(), out.c_str());
  return 0;
}

}  // namespace hone::cli
