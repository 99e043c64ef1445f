#include "models/clip_text/embedding_file.h"

#include "core/error.h"
#include "io/safetensors.h"
#include "io/weights.h"

#include <algorithm>
#include <filesystem>

namespace genvis::models {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxVectors = 75;  // one CLIP chunk

at::Tensor as_vectors(const std::string& path, const std::string& key, at::Tensor t) {
  if (!at::isFloatingType(t.scalar_type())) throw LoadError(path, key, "not a floating-point tensor");
  if (t.dim() == 1) t = t.unsqueeze(0);
  if (t.dim() != 2 || t.size(0) < 1 || t.size(0) > kMaxVectors || t.size(1) < 1)
    throw LoadError(path, key, "shape " + std::string(c10::str(t.sizes())) + ", expected [N, C] with 1 <= N <= 75");
  t = t.to(at::kFloat).contiguous();
  if (!t.isfinite().all().item<bool>()) throw LoadError(path, key, "non-finite values");
  return t;
}

}  // namespace

EmbeddingFile read_embedding_file(const std::string& path) {
  auto reader = io::open_weights(path);
  EmbeddingFile e;
  e.path = path;
  e.name = fs::path(path).stem().string();
  std::vector<std::string> names;
  for (const auto& info : reader->tensors()) names.push_back(info.name);
  const auto has = [&](const std::string& n) { return reader->contains(n); };
  if (has("clip_l") || has("clip_g")) {
    if (!has("clip_l") || !has("clip_g")) throw LoadError(path, "an SDXL embedding needs both clip_l and clip_g");
    e.vectors = as_vectors(path, "clip_l", reader->load("clip_l"));
    e.vectors_2 = as_vectors(path, "clip_g", reader->load("clip_g"));
    if (e.vectors.size(0) != e.vectors_2.size(0))
      throw LoadError(path, "clip_l and clip_g have different vector counts");
    e.format = "a1111-sdxl";
  } else if (has("emb_params")) {
    e.vectors = as_vectors(path, "emb_params", reader->load("emb_params"));
    e.format = "a1111";
  } else if (std::any_of(names.begin(), names.end(), [](const std::string& n) { return n.rfind("string_to_param.", 0) == 0; })) {
    std::vector<std::string> params;
    for (const auto& n : names)
      if (n.rfind("string_to_param.", 0) == 0) params.push_back(n);
    if (params.size() != 1) throw LoadError(path, "string_to_param holds " + std::to_string(params.size()) + " tensors, expected 1");
    e.vectors = as_vectors(path, params.front(), reader->load(params.front()));
    e.format = "a1111";
  } else if (names.size() == 1) {
    e.name = names.front();  // diffusers: the key is the token
    e.vectors = as_vectors(path, names.front(), reader->load(names.front()));
    e.format = "diffusers";
  } else {
    throw LoadError(path, names.empty() ? "no tensors: not an embedding file"
                                        : "not an embedding file (expected emb_params, string_to_param, clip_l/clip_g "
                                          "or a single token tensor; found " + std::to_string(names.size()) + " tensors)");
  }
  if (e.name.empty() || e.name.find_first_not_of(" \t") == std::string::npos)
    throw LoadError(path, "the embedding has an empty name");
  return e;
}

std::vector<EmbeddingFile> read_embedding_dir(const std::string& dir) {
  if (!fs::is_directory(dir)) throw LoadError(dir, "embeddings directory does not exist");
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto ext = entry.path().extension().string();
    if (entry.is_regular_file() && (ext == ".safetensors" || ext == ".pt" || ext == ".bin")) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<EmbeddingFile> out;
  for (const auto& f : files) out.push_back(read_embedding_file(f.string()));
  return out;
}

void save_embedding_file(const std::string& path, const EmbeddingFile& e, const std::map<std::string, std::string>& metadata) {
  if (!e.vectors.defined() || e.vectors.dim() != 2) throw UsageError("textual inversion: nothing to save");
  std::map<std::string, std::string> meta = metadata;
  meta.emplace("name", e.name);
  meta.emplace("vectors", std::to_string(e.vectors.size(0)));
  if (e.vectors_2.defined())
    io::save_safetensors(path, {{"clip_g", e.vectors_2.detach().cpu().to(at::kFloat).contiguous()},
                                {"clip_l", e.vectors.detach().cpu().to(at::kFloat).contiguous()}}, meta);
  else
    io::save_safetensors(path, {{"emb_params", e.vectors.detach().cpu().to(at::kFloat).contiguous()}}, meta);
}

}  // namespace genvis::models
