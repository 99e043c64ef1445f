#include "pipelines/adapters.h"

#include "core/error.h"
#include "core/log.h"

#include <filesystem>
#include <cmath>
#include <regex>
#include <torch/torch.h>

namespace genvis::pipelines {
namespace {

namespace fs = std::filesystem;

void append_vectors(models::CLIPTextEmbeddingsImpl& embeddings, const at::Tensor& vectors) {
  const auto& table = embeddings.token_embedding->weight;
  const at::Tensor v = vectors.to(table.device(), table.scalar_type());
  at::Tensor& extra = embeddings.extra_token_embeddings;
  extra = extra.defined() ? at::cat({extra, v}) : v;
}

}  // namespace

models::LoRATargets lora_targets(StableDiffusion& model) {
  models::LoRATargets t;
  t.unet = model.unet.ptr().get();
  t.unet_config = &model.unet->config;
  t.text_encoder = model.text_encoder.ptr().get();
  if (model.is_sdxl()) t.text_encoder_2 = model.text_encoder_2.ptr().get();
  return t;
}

models::LoRAApplyReport load_lora(StableDiffusion& model, const std::string& path, double multiplier, models::LoRAMode mode,
                                  std::optional<double> text_encoder_multiplier) {
  const models::LoRATargets targets = lora_targets(model);
  const models::LoRAFile lora = models::read_lora(path, targets);
  const auto r = models::apply_lora(lora, targets, multiplier, mode, text_encoder_multiplier);
  log_info("LoRA " + fs::path(path).filename().string() + " (" + lora.format + ", " + std::to_string(lora.modules.size()) +
           " modules, rank " + std::to_string(lora.modules.front().rank()) + "): " +
           std::to_string(r.merged) + " merged, " + std::to_string(r.attached) + " on the fly");
  return r;
}

void add_embedding(StableDiffusion& model, const models::EmbeddingFile& e) {
  auto& emb = *model.text_encoder->text_model->embeddings;
  const int64_t width = model.text_encoder->text_model->config.hidden_size;
  const std::string where = e.path.empty() ? e.name : e.path;
  if (model.is_sdxl() != e.vectors_2.defined())
    throw LoadError(where, model.is_sdxl() ? "an SD 1.x/2.x embedding (one text encoder) cannot be used with SDXL"
                                           : "an SDXL embedding (clip_l + clip_g) cannot be used with this model");
  if (e.vectors.size(1) != width)
    throw LoadError(where, "vectors of width " + std::to_string(e.vectors.size(1)) + " do not fit this text encoder (" +
                               std::to_string(width) + "): an embedding for another model family?");
  const int64_t vocab = emb.token_embedding->weight.size(0);
  const int64_t first_id = vocab + (emb.extra_token_embeddings.defined() ? emb.extra_token_embeddings.size(0) : 0);
  if (model.is_sdxl()) {
    auto& emb2 = *model.text_encoder_2->text_model->embeddings;
    const int64_t width2 = model.text_encoder_2->text_model->config.hidden_size;
    if (e.vectors_2.size(1) != width2)
      throw LoadError(where, "clip_g vectors of width " + std::to_string(e.vectors_2.size(1)) +
                                 " do not fit the second text encoder (" + std::to_string(width2) + ")");
    const int64_t first_2 = emb2.token_embedding->weight.size(0) +
                            (emb2.extra_token_embeddings.defined() ? emb2.extra_token_embeddings.size(0) : 0);
    if (first_2 != first_id) throw LoadError(where, "the two text encoders' vocabularies differ in size");
    append_vectors(emb2, e.vectors_2);
  }
  append_vectors(emb, e.vectors);
  if (!model.embeddings) model.embeddings = std::make_shared<tokenizers::EmbeddingTokens>();
  // diffusers' tokens are added tokens (cut out of the text); A1111 names are matched on BPE ids.
  model.embeddings->add(e.name, model.tokenizer->encode(e.name), first_id, e.vectors.size(0), e.format == "diffusers");
}

size_t load_embeddings(StableDiffusion& model, const std::string& dir) {
  const auto files = models::read_embedding_dir(dir);
  for (const auto& e : files) add_embedding(model, e);
  return files.size();
}

std::string extract_lora_tags(const std::string& prompt, std::vector<PromptLoRA>& found) {
  static const std::regex tag(R"(<lora:([^:>]*)(?::([^:>]*))?(?::([^:>]*))?>)");
  std::string out;
  auto begin = prompt.cbegin();
  for (std::sregex_iterator it(prompt.begin(), prompt.end(), tag), end; it != end; ++it) {
    const std::smatch& m = *it;
    out.append(begin, m[0].first);
    begin = m[0].second;
    PromptLoRA l;
    l.name = m[1].str();
    if (l.name.empty()) throw UsageError("prompt tag " + m[0].str() + ": the LoRA name is empty");
    const auto number = [&](const std::string& s) {
      try {
        size_t used = 0;
        const double v = std::stod(s, &used);
        if (used == s.size() && std::isfinite(v)) return v;
      } catch (const std::exception&) {
      }
      throw UsageError("prompt tag " + m[0].str() + ": '" + s + "' is not a number");
    };
    if (m[2].matched) l.unet_multiplier = l.text_encoder_multiplier = number(m[2].str());
    if (m[3].matched) l.unet_multiplier = number(m[3].str());  // <lora:name:te:unet>
    found.push_back(l);
  }
  out.append(begin, prompt.cend());
  return out;
}

std::string find_lora_file(const std::string& dir, const std::string& name) {
  // A tag names a file in the folder, never a path out of it (a server takes prompts from anyone).
  if (name.empty() || name.find_first_of("/\\") != std::string::npos || name == "." || name == ".." ||
      name.rfind("..", 0) == 0)
    throw UsageError("<lora:" + name + ":...>: a LoRA name is a file name in the LoRA folder, not a path");
  for (const char* ext : {".safetensors", ".pt", ".ckpt", ".bin"}) {
    const fs::path p = fs::path(dir) / (name + ext);
    if (fs::is_regular_file(p)) return p.string();
  }
  std::string have;
  if (fs::is_directory(dir))
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.path().extension() == ".safetensors") have += (have.empty() ? "" : ", ") + entry.path().stem().string();
  throw LoadError(dir, "no LoRA named '" + name + "' (" + (have.empty() ? "the folder has none" : "available: " + have) + ")");
}

}  // namespace genvis::pipelines
