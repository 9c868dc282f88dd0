// Every subcommand: int cmd_<name>(argc, argv) with argv after the command name. Exit codes:
// 0 success, 1 failure of the work (bad input data, missing file), 2 bad usage.
#pragma once

namespace hone::cli {

int cmd_demo(int argc, char** argv);
int cmd_finetune(int argc, char** argv);
int cmd_generate(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_prepare(int argc, char** argv);
int cmd_logits(int argc, char** argv);
int cmd_grads(int argc, char** argv);
int cmd_export(int argc, char** argv);
int cmd_version(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_predict(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_plot(int argc, char** argv);
int cmd_tokenizer(int argc, char** argv);
int cmd_sweep(int argc, char** argv);

}  // namespace hone::cli
