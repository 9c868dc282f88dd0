#include <cstdio>

#include "engine/data/text_sources.h"
#include "engine/data/token_shards.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/model_source.h"

namespace hone::cli {

int cmd_prepare(int argc, char** argv) {
  const Args a = parse("prepare", argc, argv, {"tokenizer", "in", "out", "val-fraction", "text-field"});
  const BpeTokenizer tok = open_tokenizer(a.str("tokenizer"));
  const std::string in = a.str("in"), out = a.str("out");
  const auto docs = data::read_documents(in, a.str("text-field", "text"));
  std::vector<std::vector<int32_t>> ids;
  ids.reserve(docs.size());
  for (const std::string& d : docs) ids.push_back(tok.encode(d, /*allow_special=*/false));
  data::PrepareOptions o;
  o.val_fraction = a.number("val-fraction", 0.05);
  const auto s = data::write_token_shards(out, ids, tok.vocab_size(), tok.eot_id(), o,
                                          {{"source", in}, {"tokenizer", a.str("tokenizer")}});
  std::printf("%ld documents: %ld train tokens, %ld val tokens (%s) -> %s\n", long(s.documents), long(s.train_tokens),
              long(s.val_tokens), s.dtype.c_str(), out.c_str());
  return 0;
}

}  // namespace hone::cli
