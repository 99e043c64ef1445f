// PyTorch checkpoints (.ckpt/.pt/.pth/.bin) through the restricted unpickler (io/pickle.h).
//
//   auto w = genvis::io::open_torch_checkpoint("v1-5-pruned-emaonly.ckpt");
//   w->metadata().at("global_step");                      // "840000" (Lightning checkpoints)
//   at::Tensor x = w->load("model.diffusion_model.out.2.weight");
//
// Formats: the zip archive of torch >= 1.6 ("<archive>/data.pkl" + "<archive>/data/<key>"),
// format() "pytorch-zip", and the legacy stream of torch < 1.6 (magic number, protocol, sys_info,
// pickle, storage keys, then raw storages), format() "pytorch-legacy". A Lightning
// {"state_dict": {...}, "global_step": ...} is unwrapped; nested dicts and lists are flattened
// with '.'. load() reads one storage at a time (the last one is cached only when several tensors
// share it) and returns a contiguous CPU tensor in the stored dtype.
#pragma once
#include "io/weights.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace genvis::io {

// Content sniffing on the first bytes of a file ("PK\3\4" / "PK\5\6").
bool is_zip_file(const uint8_t* data, size_t size);
// The legacy magic-number pickle; needs the first 14 bytes (23 if the pickle is framed).
bool is_legacy_torch_file(const uint8_t* data, size_t size);

// Opens either format; throws LoadError naming the file (and tensor or storage) on any problem.
std::unique_ptr<WeightReader> open_torch_checkpoint(const std::string& path);

}  // namespace genvis::io
