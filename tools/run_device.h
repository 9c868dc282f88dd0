// Where and in what precision a command runs: `--device cpu|cuda|cuda:N` and
// `--precision fp32|bf16|fp16` (or the recipe keys `device` and `precision`), checked against
// this build and machine before any work starts.
#pragma once
#include <cstdio>
#include <string>

#include "engine/core/device.h"
#include "engine/core/dtype.h"
#include "engine/nn/module.h"
#include "tools/cli.h"

namespace hone::cli {

// Parses `text` and checks that this build and machine have that device; errors start with
// `where` (a recipe path or "--device") and quote the text: "<where>: device 'cuda:3': ...".
Device checked_device(const std::string& text, const std::string& where);
// --device (default cpu).
Device device_flag(const Args& a);
// fp32 -> F32 (autocast off), bf16 -> BF16, fp16 -> F16; anything else is refused naming `where`.
DType autocast_dtype_of(const std::string& precision, const std::string& where);
// --precision (default fp32) for inference commands (no loss scaling needed without a backward
// of a scaled loss; `hone grads` in fp16 reports float16's limits as they are).
DType precision_flag(const Args& a);
// Moves `model` to `device` (a no-op on the CPU) and says where it runs on `log` (stderr for the
// commands whose stdout is their result).
void place_model(nn::Module& model, const Device& device, std::FILE* log = stderr);

}  // namespace hone::cli
