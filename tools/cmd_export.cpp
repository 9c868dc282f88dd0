#include <cstdio>

#include "engine/nn/lora.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/model_source.h"

namespace hone::cli {

int cmd_export(int argc, char** argv) {
  const Args a = parse("export", argc, argv, {"out"});
  if (a.positional.size() != 1) throw std::invalid_argument("expected one run or model folder");
  const std::string in = a.positional[0], out = a.str("out");
  // LoRA runs are exported merged: the folder has exactly the base model's tensors.
  if (model_type_of(in) == "gpt2") {
    auto m = open_gpt2(in, false).model;
    nn::merge_lora(*m);
    models::export_gpt2_hf(*m, out);
  } else {
    auto m = open_bert(in, false).model;
    nn::merge_lora(*m);
    models::export_bert_hf(*m, out);
  }
  copy_tokenizer_files(in, out);
  std::printf("exported %s -> %s (config.json, model.safetensors, tokenizer files)\n", in.c_str(), out.c_str());
  return 0;
}

}  // namespace hone::cli
