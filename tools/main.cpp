// The hone command line: a table of subcommands. Parsing and dispatch only; no math here.
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

#include "tools/commands.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* usage;
};

const Command kCommands[] = {
    {"finetune", hone::cli::cmd_finetune, "finetune RECIPE.yaml [key=value ...]   fine-tune as the recipe says"},
    {"generate", hone::cli::cmd_generate,
     "generate --model M [--prompt TEXT | --prompt-file F] [--max-tokens N] [--temperature T]\n"
     "           [--top-k K] [--top-p P] [--seed S] [DEV]    sample text, streamed as it comes"},
    {"inspect", hone::cli::cmd_inspect,
     "inspect MODEL                            architecture, parameter count, every tensor\n"
     "inspect --trainable RECIPE [key=value]   what the recipe's freezing leaves trainable, memory saved"},
    {"tokenize", hone::cli::cmd_tokenize, "tokenize --model M --in FILE [--out ids.npy]   token ids of a file"},
    {"tokenizer", hone::cli::cmd_tokenizer,
     "tokenizer train --in PATH --out DIR [--vocab-size N] [--min-frequency F]   learn byte-level BPE"},
    {"prepare", hone::cli::cmd_prepare,
     "prepare --tokenizer DIR --in PATH --out DIR [--val-fraction F] [--text-field NAME]\n"
     "           text file, folder of .txt or JSONL -> token shards with a train/val split"},
    {"eval", hone::cli::cmd_eval,
     "eval --model RUN --data FILE [--text-column C] [--text-pair-column C] [--label-column C] [--no-header] [DEV]\n"
     "           accuracy, macro-F1, per-class precision/recall, confusion matrix"},
    {"predict", hone::cli::cmd_predict, "predict --model RUN [--in FILE] [DEV]    label sentences (stdin by default)"},
    {"logits", hone::cli::cmd_logits,
     "logits --model M --input X.npy --out Y.npy [--attention-mask A.npy] [--token-type-ids T.npy] [DEV]\n"
     "           forward outputs: [B, T, V] for GPT-2, [B, labels] for a classifier"},
    {"grads", hone::cli::cmd_grads,
     "grads --model M --input X.npy --targets T.npy --out G.safetensors [DEV]   parameter gradients\n"
     "           named as in the checkpoint (classifiers: --targets are labels [B])"},
    {"sweep", hone::cli::cmd_sweep,
     "sweep SWEEP.yaml   hyperparameter search: grid/random, successive halving, resumable"},
    {"plot", hone::cli::cmd_plot, "plot RUN... [--out STEM]                 loss and metric curves as PNG and SVG"},
    {"export", hone::cli::cmd_export, "export RUN --out DIR                     a Hugging Face folder"},
    {"bench", hone::cli::cmd_bench,
     "bench gpt2 [--batch B] [--seq T] [--steps N] [--warmup W] [DEV] [--tf32] [--profile]   time GPT-2 124M\n"
     "           training steps (tokens/s; on CUDA also MFU and peak device memory; --profile: where the GPU's\n"
     "           time goes, traced with CUPTI: busy vs waiting for the host, kinds of work, top kernels)\n"
     "  bench resnet [--batch B] [--steps N] [DEV] [--profile]   time ResNet-18 (CIFAR stem) training steps"},
    {"demo", hone::cli::cmd_demo, "demo [--steps N] [--batch B] [--lr LR] [--seed S]   a small GPT on generated data"},
    {"version", hone::cli::cmd_version, "version                                  build facts"},
};

void print_usage(std::FILE* out) {
  std::fprintf(out, "usage: hone <command> [options]\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %s\n", c.usage);
  std::fprintf(out, "\nDEV: [--device cpu|cuda|cuda:N] [--precision fp32|bf16|fp16]; recipes: device:, precision:\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    print_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  for (const Command& c : kCommands) {
    if (name != c.name) continue;
    try {
      return c.run(argc - 2, argv + 2);
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr, "hone %s: %s\nusage: hone %s\n", c.name, e.what(), c.usage);
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "hone %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "hone: unknown command '%s'\n", name.c_str());
  print_usage(stderr);
  return 2;
}
