// Peak arithmetic throughput of known GPUs, for model-FLOPs utilisation (MFU): achieved FLOP/s
// over the card's dense peak for the precision the matmuls run in. Datasheet numbers (dense, no
// structured sparsity), matched by the name the driver reports, as llm.c does. An unknown card
// gets no number: printing "unknown" beats a confident wrong MFU.
#pragma once
#include <optional>
#include <string>

namespace hone {

enum class MatmulPrecision { BF16, TF32, FP32 };  // fp16 tensor-core peaks equal bf16's

struct PeakFlops {
  std::string card;  // the datasheet's name of the matched card ("H100 SXM")
  double tflops = 0;
};

// The peak for `device_name` (e.g. "NVIDIA H100 80GB HBM3"), or nothing for an unknown card.
std::optional<PeakFlops> gpu_peak_flops(const std::string& device_name, MatmulPrecision precision);

}  // namespace hone
