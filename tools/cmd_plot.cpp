// `hone plot RUN... [--out STEM]`: loss and metric curves of one or more runs, overlaid.
#include <cstdio>
#include <filesystem>

#include "engine/train/plot.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace hone::cli {

int cmd_plot(int argc, char** argv) {
  const Args a = parse("plot", argc, argv, {"out"});
  if (a.positional.empty()) throw std::invalid_argument("expected one or more run folders");
  const std::string stem =
      a.str("out", a.positional.size() == 1 ? (std::filesystem::path(a.positional[0]) / "curves").string() : "curves");
  plot_runs(a.positional, stem);
  std::printf("%s.png\n%s.svg\n", stem.c_str(), stem.c_str());
  return 0;
}

}  // namespace hone::cli
