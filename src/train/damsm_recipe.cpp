#include "train/damsm_recipe.h"

#include "core/error.h"
#include "core/torch_compat.h"
#include "models/damsm/damsm_encoder.h"
#include "models/damsm/damsm_loss.h"

#include <algorithm>
#include <torch/torch.h>

namespace genvis::train {
namespace {

using json = nlohmann::json;

json derive_damsm_model_config(const TextImageEncoderRecipeConfig& c, std::vector<std::string>& problems) {
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
    if (t.contains("vocab_size")) problems.push_back("model.text_config.vocab_size is set by the recipe from the tokenizer");
    t["vocab_size"] = std::max<int64_t>(c.vocab_size, 514);
  }
  return m;
}

class Damsm final : public TextImageEncoderModel {
public:
  explicit Damsm(models::DamsmEncoder encoder) : encoder_(std::move(encoder)) {}
  torch::nn::Module& module() override { return *encoder_.model(); }
  json config_json() const override { return encoder_.config().to_json(); }
  void save(const std::string& folder) const override { encoder_.save(folder); }
  void set_captions(const std::vector<std::string>& captions) override { tokens_ = encoder_.tokenize(captions); }

  at::Tensor loss(const at::Tensor& images, const at::Tensor& rows, const at::Tensor& caption_ids) override {
    auto& model = encoder_.model();
    const at::Tensor lengths = tokens_.lengths.index_select(0, rows);
    const at::Tensor ids = tokens_.ids.index_select(0, rows).narrow(1, 0, lengths.max().item<int64_t>());
    const auto text = model->encode_text(ids, lengths);
    const auto image = model->encode_image(images);
    compat::AutocastGuard f32(images.device().type(), at::kBFloat16, /*enabled=*/false);
    const auto& c = encoder_.config();
    const models::damsm::Gammas g{.gamma1 = c.gamma1, .gamma2 = c.gamma2, .gamma3 = c.gamma3};
    const at::Tensor mask = models::DamsmTokens{ids, lengths}.mask().to(images.device());
    const at::Tensor same = models::damsm::same_caption_mask(caption_ids).to(images.device());
    const at::Tensor words = models::damsm::word_scores(text.words.to(at::kFloat), mask, image.regions.to(at::kFloat), g);
    const at::Tensor sentences = models::damsm::sentence_scores(text.sentence.to(at::kFloat), image.global.to(at::kFloat));
    return models::damsm::matching_loss(words, g.gamma3, same) + models::damsm::matching_loss(sentences, g.gamma3, same);
  }

  eval::TextImageEmbedder embedder() override { return eval::damsm_embedder(encoder_); }

private:
  models::DamsmEncoder encoder_;
  models::DamsmTokens tokens_;  // every training caption
};

}  // namespace

const TextImageEncoderKind& damsm_kind() {
  static const TextImageEncoderKind kind{
      .recipe = "damsm",
      .derive_model_config = derive_damsm_model_config,
      .check_model_config = [](const json& m) { models::DamsmConfig::from_json(m, "model"); },
      .create = [](const json& m, const std::string& tok) -> std::unique_ptr<TextImageEncoderModel> {
        return std::make_unique<Damsm>(models::DamsmEncoder(models::DamsmConfig::from_json(m, "model"), tok));
      },
      .load = [](const std::string& folder) -> std::unique_ptr<TextImageEncoderModel> {
        return std::make_unique<Damsm>(models::DamsmEncoder::load(folder));
      }};
  return kind;
}

DamsmRecipeConfig DamsmRecipeConfig::from_json(const json& j, const std::string& source) {
  return {parse_text_image_encoder_config(j, source, damsm_kind())};
}

DamsmRecipeConfig DamsmRecipeConfig::from_file(const std::string& path) {
  return from_json(recipe::read_config_file(path), path);
}

TextImageEncoderRecipeResult run_damsm_recipe(const DamsmRecipeConfig& config, const TextImageEncoderRecipeOptions& options) {
  return run_text_image_encoder_recipe(config, options, damsm_kind());
}

}  // namespace genvis::train
