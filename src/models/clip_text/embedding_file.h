// Textual-inversion embedding files: the vectors a placeholder word stands for.
//
//   EmbeddingFile e = read_embedding_file("embeddings/genvis-style.safetensors");
//   e.name     // "genvis-style": the word to write in prompts
//   e.vectors  // [N, C] for the (first) CLIP text encoder; e.vectors_2 for SDXL's second
//
// Layouts (content decides, not the extension):
//   AUTOMATIC1111 / kohya  safetensors {"emb_params": [N, C]} or .pt {"string_to_param": {"*": [N, C]}},
//                          name = the file name without extension
//   SDXL (A1111, kohya)    {"clip_l": [N, 768], "clip_g": [N, 1280]}, name = the file name
//   diffusers              learned_embeds.{safetensors,bin} {"<token>": [C] or [N, C]}, name = the key
#pragma once
#include <ATen/ATen.h>
#include <map>
#include <string>
#include <vector>

namespace genvis::models {

struct EmbeddingFile {
  std::string name;
  at::Tensor vectors;    // [N, C], float32
  at::Tensor vectors_2;  // SDXL second encoder [N, C2]; undefined otherwise
  std::string format;    // "a1111", "a1111-sdxl", "diffusers"
  std::string path;
};

// LoadError naming the file for anything else: no recognisable tensor, several candidates,
// a shape that is not [N, C] with 1 <= N <= 75, non-finite values.
EmbeddingFile read_embedding_file(const std::string& path);

// Every embedding file (*.safetensors, *.pt, *.bin) directly inside `dir`, sorted by file name.
// LoadError for a missing directory or a damaged file (naming it).
std::vector<EmbeddingFile> read_embedding_dir(const std::string& dir);

// The A1111 safetensors layout: {"emb_params": [N, C]} (SDXL: {"clip_l", "clip_g"}) with the
// name, vector count and `metadata`; written atomically.
void save_embedding_file(const std::string& path, const EmbeddingFile& embedding,
                         const std::map<std::string, std::string>& metadata = {});

}  // namespace genvis::models
