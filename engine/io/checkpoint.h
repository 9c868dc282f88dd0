// Reading and writing the checkpoint files people actually have: safetensors (read by mmap,
// written atomically), PyTorch state dicts (zip format and the legacy pre-1.6 format, through a
// restricted unpickler that only rebuilds tensors and plain containers), and .npy arrays.
//
// Every reader validates its input and throws FormatError with a message that names the file and
// what was wrong or expected. Writers go through write_file_atomic, so a crash or an error never
// leaves a half-written file where a good one was.
#pragma once
#include <cstdio>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>

#include "engine/core/tensor.h"

namespace hone::io {

// Ordered by name, as safetensors headers and `hone inspect` list them.
using StateDict = std::map<std::string, Tensor>;

// A file is not what it claims to be (truncated, corrupt, unsupported, or unsafe to load).
struct FormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- safetensors ------------------------------------------------------------------------------
// Tensors are views into a private (copy-on-write) mapping of the file: loading costs no copy and
// writing into a loaded tensor never changes the file. The mapping lives as long as any tensor.
// Dtypes F64 F32 F16 BF16 I64 I32 U8 load as they are; BOOL loads as uint8 (0/1); I8, I16, U16
// widen to int32 and U32 to int64 (copies); F8 and U64 are refused.
StateDict load_safetensors(const std::string& path);
// The header's "__metadata__" (string to string); empty when absent.
std::map<std::string, std::string> safetensors_metadata(const std::string& path);
// Tensors are written contiguous, little-endian, largest element size first (so every tensor is
// aligned to its element size), the header padded with spaces to a multiple of 8 bytes.
void save_safetensors(const std::string& path, const StateDict& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// ---- PyTorch ------------------------------------------------------------------------------------
// torch.save files: the zip format (pytorch_model.bin, .pt, .pth since PyTorch 1.6) and the
// legacy format (magic number, protocol, sys_info, the object, storage keys, raw storages).
// Storages recorded on a GPU are loaded to the CPU. Returns the tensors at the top level of the
// saved dict, or under its 'state_dict', 'model_state_dict' or 'model' entry when that is a dict;
// other values (epoch, best_prec1, optimizer state, ...) are skipped. Tensors that shared a
// storage in PyTorch share one hone Storage. Only stored (uncompressed) zip entries are read, as
// torch.save writes them.
StateDict load_torch(const std::string& path);

// ---- any checkpoint -------------------------------------------------------------------------------
// Dispatches on the file's first bytes (zip, legacy torch pickle, safetensors). A directory is a
// Hugging Face model folder: model.safetensors, model.safetensors.index.json (sharded),
// pytorch_model.bin or pytorch_model.bin.index.json, in that order of preference. An
// *.index.json file may also be named directly.
StateDict load_checkpoint(const std::string& path);

// ---- numpy ----------------------------------------------------------------------------------------
// .npy versions 1, 2 and 3. Little-endian (or byte-order-free) '<f8' '<f4' '<f2' '<i8' '<i4'
// '|u1' load as they are; '|b1' loads as uint8; '|i1' '<i2' '<u2' widen to int32, '<u4' to int64.
// Fortran-order arrays are returned in C (row-major) order.
Tensor load_npy(const std::string& path);
// Writes format version 1.0 (header padded to a multiple of 64 bytes), atomically. numpy has no
// bfloat16: such tensors are refused (convert them first).
void save_npy(const std::string& path, const Tensor& t);

// ---- atomic files ---------------------------------------------------------------------------------
// Calls `write` on a temporary file in the same directory as `path`, then flushes, fsyncs and
// renames it over `path`. If `write` throws or any step fails, the temporary file is removed,
// `path` is left as it was, and the error propagates (std::runtime_error naming the file for I/O
// failures). The new file gets the old file's permissions, or 0644 for a new file.
void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& write);

}  // namespace hone::io
