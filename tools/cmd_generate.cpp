#include <cstdio>
#include <fstream>
#include <sstream>

#include "models/gpt2/generate.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/model_source.h"
#include "tools/run_device.h"
#include "engine/autograd/autocast_mode.h"

namespace hone::cli {

int cmd_generate(int argc, char** argv) {
  const Args a = parse("generate", argc, argv,
                       {"model", "prompt", "prompt-file", "max-tokens", "temperature", "top-k", "top-p", "seed", "device",
                        "precision"});
  const std::string model_dir = a.str("model");
  std::string prompt;
  if (a.has("prompt-file")) {
    std::ifstream f(a.str("prompt-file"), std::ios::binary);
    if (!f) throw std::runtime_error(a.str("prompt-file") + ": cannot read the prompt file");
    std::stringstream ss;
    ss << f.rdbuf();
    prompt = ss.str();
  } else {
    prompt = a.str("prompt", "\n");
  }
  models::GenerateOptions o;
  o.max_new_tokens = a.integer("max-tokens", 100);
  o.sampling.temperature = a.number("temperature", 1.0);
  o.sampling.top_k = a.integer("top-k", 0);
  o.sampling.top_p = a.number("top-p", 1.0);
  o.sampling.seed = uint64_t(a.integer("seed", 1234));
  if (o.sampling.temperature < 0 || o.sampling.top_p <= 0 || o.sampling.top_p > 1 || o.sampling.top_k < 0 ||
      o.max_new_tokens < 0)
    throw std::invalid_argument("need temperature >= 0, 0 < top-p <= 1, top-k >= 0, max-tokens >= 0");
  const auto loaded = open_gpt2(model_dir, false);
  place_model(*loaded.model, device_flag(a));
  AutocastGuard autocast(precision_flag(a));
  const BpeTokenizer tok = open_tokenizer(model_dir);
  o.stop_token = tok.eot_id();
  const std::vector<int32_t> ids = tok.encode(prompt);
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  std::fflush(stdout);
  models::generate(*loaded.model, ids, o, [&](int32_t id) {
    const std::string piece = tok.decode({id});
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace hone::cli
