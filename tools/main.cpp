// The hone command line. Parses arguments and dispatches; no math here.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "kernels/gemm.h"
#include "kernels/runtime.h"
#include "models/toy/progression_demo.h"

namespace {

const char* kUsage =
    "usage: hone <command> [options]\n"
    "\n"
    "commands:\n"
    "  demo [--steps N] [--batch B] [--lr LR] [--seed S]\n"
    "        train a small GPT-style model on generated sequences and print its falling loss\n"
    "  version\n"
    "        build facts: CPU GEMM kernel in use, CUDA device present\n";

int64_t parse_int(const char* flag, const char* value) {
  char* end = nullptr;
  const long long v = std::strtoll(value, &end, 10);
  if (!end || *end != '\0' || v <= 0) {
    std::fprintf(stderr, "hone: %s expects a positive integer, got '%s'\n", flag, value);
    std::exit(2);
  }
  return v;
}

double parse_double(const char* flag, const char* value) {
  char* end = nullptr;
  const double v = std::strtod(value, &end);
  if (!end || *end != '\0' || !(v > 0)) {
    std::fprintf(stderr, "hone: %s expects a positive number, got '%s'\n", flag, value);
    std::exit(2);
  }
  return v;
}

int cmd_demo(int argc, char** argv) {
  hone::models::DemoOptions o;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "hone demo: unknown or incomplete option '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
    const char* v = argv[++i];
    if (a == "--steps") o.steps = parse_int("--steps", v);
    else if (a == "--batch") o.batch = parse_int("--batch", v);
    else if (a == "--lr") o.lr = parse_double("--lr", v);
    else if (a == "--seed") o.seed = static_cast<uint64_t>(parse_int("--seed", v));
    else {
      std::fprintf(stderr, "hone demo: unknown option '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  const auto r = hone::models::run_progression_demo(o);
  return r.val_loss_after < r.val_loss_before ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  try {
    if (cmd == "demo") return cmd_demo(argc - 2, argv + 2);
    if (cmd == "version") {
      std::printf("hone 0.1 (sgemm: %s, cuda device: %s)\n", hone::kernels::sgemm_backend(),
                  hone::kernels::cuda_device_present() ? "yes" : "no");
      return 0;
    }
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hone %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
  std::fprintf(stderr, "hone: unknown command '%s'\n%s", cmd.c_str(), kUsage);
  return 2;
}
