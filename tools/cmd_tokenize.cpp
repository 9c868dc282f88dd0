#include <cstdio>
#include <fstream>
#include <sstream>

#include "engine/data/text_sources.h"
#include "engine/io/checkpoint.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/model_source.h"

namespace hone::cli {

int cmd_tokenize(int argc, char** argv) {
  const Args a = parse("tokenize", argc, argv, {"model", "in", "out"});
  const BpeTokenizer tok = open_tokenizer(a.str("model"));
  const std::string in = a.str("in");
  std::ifstream f(in, std::ios::binary);
  if (!f) throw std::runtime_error(in + ": cannot read the input file");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  const std::vector<int32_t> ids = tok.encode(text);  // the whole file as one text
  if (a.has("out")) {
    std::vector<int64_t> v(ids.begin(), ids.end());
    io::save_npy(a.str("out"), Tensor::from_vector(v, {int64_t(v.size())}));
    std::fprintf(stderr, "%zu tokens -> %s\n", ids.size(), a.str("out").c_str());
  } else {
    for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
    std::printf("\n");
  }
  return 0;
}

}  // namespace hone::cli
