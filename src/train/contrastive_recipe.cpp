#include "train/contrastive_recipe.h"

#include "core/error.h"
#include "core/torch_compat.h"
#include "models/contrastive/contrastive_encoder.h"

#include <cmath>
#include <torch/torch.h>

namespace genvis::train {
namespace {

using json = nlohmann::json;

// The model config with the recipe's derived keys (placeholders for the tokenizer's ids).
json derive_contrastive_model_config(const TextImageEncoderRecipeConfig& c, std::vector<std::string>& problems) {
  json m = c.model_config.is_object() ? c.model_config : json::object();
  json& v = m["vision_config"];
  if (v.is_null()) v = json::object();
  if (v.is_object()) {
    if (v.contains("image_size") && v["image_size"] != json(c.dataset.resolution))
      problems.push_back("model.vision_config.image_size is set by the recipe to dataset.resolution " +
                         std::to_string(c.dataset.resolution) + ", got " + v["image_size"].dump());
    v["image_size"] = c.dataset.resolution;
  }
  json& t = m["text_config"];
  if (t.is_null()) t = json::object();
  if (t.is_object()) {
    for (const char* key : {"vocab_size", "bos_token_id", "eos_token_id", "pad_token_id"})
      if (t.contains(key)) problems.push_back(std::string("model.text_config.") + key + " is set by the recipe from the tokenizer");
    t["vocab_size"] = std::max<int64_t>(c.vocab_size, 514);
    t["bos_token_id"] = 0;
    t["eos_token_id"] = 1;
    t["pad_token_id"] = 1;
  }
  return m;
}

// Symmetric InfoNCE over a batch; `same` [B,B] marks pairs with the same caption text.
at::Tensor info_nce(const at::Tensor& image_embeds, const at::Tensor& text_embeds, const at::Tensor& logit_scale,
                    const at::Tensor& same) {
  compat::AutocastGuard f32(image_embeds.device().type(), at::kBFloat16, /*enabled=*/false);
  namespace F = torch::nn::functional;
  const auto unit = F::NormalizeFuncOptions().dim(1);
  const at::Tensor img = F::normalize(image_embeds.to(at::kFloat), unit), txt = F::normalize(text_embeds.to(at::kFloat), unit);
  const at::Tensor logits = logit_scale.clamp_max(std::log(100.0)).exp() * img.matmul(txt.t());  // [B,B]
  const at::Tensor targets = same / same.sum(1, /*keepdim=*/true);                                // rows sum to 1
  const at::Tensor image_to_text = -(targets * logits.log_softmax(1)).sum(1).mean();
  const at::Tensor text_to_image = -(targets * logits.t().log_softmax(1)).sum(1).mean();
  return 0.5 * (image_to_text + text_to_image);
}

class Contrastive final : public TextImageEncoderModel {
public:
  explicit Contrastive(models::ContrastiveEncoder encoder) : encoder_(std::move(encoder)) {}
  torch::nn::Module& module() override { return *encoder_.model(); }
  json config_json() const override { return encoder_.config().to_json(); }
  void save(const std::string& folder) const override { encoder_.save(folder); }
  void set_captions(const std::vector<std::string>& captions) override { ids_ = encoder_.tokenize(captions); }
  at::Tensor loss(const at::Tensor& images, const at::Tensor& rows, const at::Tensor& caption_ids) override {
    auto& model = encoder_.model();
    const at::Tensor text = models::trim_eos_padding(ids_.index_select(0, rows), encoder_.tokenizer().eos_id());
    const at::Tensor same = caption_ids.unsqueeze(1).eq(caption_ids.unsqueeze(0)).to(at::kFloat);
    return info_nce(model->encode_image(images), model->encode_text(text), model->logit_scale, same);
  }
  eval::TextImageEmbedder embedder() override {
    return {[this](const at::Tensor& x) { return encoder_.embed_images(x); },
            [this](const std::vector<std::string>& t) { return encoder_.embed_texts(t); }};
  }
  std::string describe() override {
    return "logit scale " + std::to_string(encoder_.model()->logit_scale.exp().item<double>());
  }

private:
  models::ContrastiveEncoder encoder_;
  at::Tensor ids_;  // [N,L] every training caption
};

}  // namespace

const TextImageEncoderKind& contrastive_kind() {
  static const TextImageEncoderKind kind{
      .recipe = "contrastive",
      .derive_model_config = derive_contrastive_model_config,
      .check_model_config = [](const json& m) { models::ContrastiveConfig::from_json(m, "model"); },
      .create = [](const json& m, const std::string& tok) -> std::unique_ptr<TextImageEncoderModel> {
        return std::make_unique<Contrastive>(models::ContrastiveEncoder(models::ContrastiveConfig::from_json(m, "model"), tok));
      },
      .load = [](const std::string& folder) -> std::unique_ptr<TextImageEncoderModel> {
        return std::make_unique<Contrastive>(models::ContrastiveEncoder::load(folder));
      }};
  return kind;
}

ContrastiveRecipeConfig ContrastiveRecipeConfig::from_json(const json& j, const std::string& source) {
  return {parse_text_image_encoder_config(j, source, contrastive_kind())};
}

ContrastiveRecipeConfig ContrastiveRecipeConfig::from_file(const std::string& path) {
  return from_json(recipe::read_config_file(path), path);
}

ContrastiveRecipeResult run_contrastive_recipe(const ContrastiveRecipeConfig& config, const ContrastiveRecipeOptions& options) {
  return run_text_image_encoder_recipe(config, options, contrastive_kind());
}

}  // namespace genvis::train
