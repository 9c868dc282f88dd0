#include <cstdio>
#include <stdexcept>

#include "engine/core/device.h"
#include "kernels/gemm.h"
#include "kernels/runtime.h"
#include "models/toy/progression_demo.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace hone::cli {

int cmd_demo(int argc, char** argv) {
  const Args a = parse("demo", argc, argv, {"steps", "batch", "lr", "seed"});
  models::DemoOptions o;
  o.steps = a.integer("steps", o.steps);
  o.batch = a.integer("batch", o.batch);
  o.lr = a.number("lr", o.lr);
  o.seed = static_cast<uint64_t>(a.integer("seed", int64_t(o.seed)));
  if (o.steps < 1 || o.batch < 1 || !(o.lr > 0)) throw std::invalid_argument("--steps, --batch and --lr must be positive");
  const auto r = models::run_progression_demo(o);
  return r.val_loss_after < r.val_loss_before ? 0 : 1;
}

int cmd_version(int, char**) {
  std::printf("hone 0.1 (sgemm: %s, cuda device: %s)\n", kernels::sgemm_backend(),
              kernels::cuda_device_present() ? "yes" : "no");
  // Build facts a GPU user asks first: which paths this binary can take.
#if defined(HONE_WITH_CUDA)
  const char* cuda = "yes";
#else
  const char* cuda = "no";
#endif
#if defined(HONE_HAVE_CUDNN)
  const char* cudnn = "yes";
#else
  const char* cudnn = "no (direct kernels)";
#endif
#if defined(HONE_HAVE_CUDNN_SDPA)
  const char* sdpa = "cuDNN fused SDPA for bf16/f16, own kernel otherwise";
#else
  const char* sdpa = "own kernel (no cuDNN frontend at build time)";
#endif
  std::printf("  build: CUDA %s, cuDNN convolution %s, attention: %s\n", cuda, cudnn, sdpa);
  for (int d = 0; d < cuda_device_count(); ++d)
    std::printf("  cuda:%d %s\n", d, device_name(Device::cuda(d)).c_str());
  return 0;
}

}  // namespace hone::cli
