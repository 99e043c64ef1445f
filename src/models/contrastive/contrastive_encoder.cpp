#include "models/contrastive/contrastive_encoder.h"

#include "core/error.h"
#include "io/image_tensor.h"
#include "nn/module_folder.h"
#include "tokenizers/tokenizer_folder.h"

#include <filesystem>
#include <torch/torch.h>

namespace genvis::models {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kChunk = 256;

}  // namespace

at::Tensor trim_eos_padding(const at::Tensor& input_ids, int64_t eos_id) {
  const int64_t l = input_ids.size(1);
  // First EOS per row (l when a row has none), the longest row decides.
  const at::Tensor is_eos = input_ids.eq(eos_id).to(at::kLong);
  const at::Tensor rank = torch::arange(l, 0, -1, input_ids.options().dtype(at::kLong));
  const at::Tensor first = (is_eos * rank).argmax(1);
  const at::Tensor has = is_eos.amax(1).gt(0);
  const int64_t keep = input_ids.size(0) == 0 ? l : at::where(has, first + 1, torch::full_like(first, l)).max().item<int64_t>();
  return input_ids.narrow(1, 0, keep).contiguous();
}

ContrastiveEncoder::ContrastiveEncoder(ContrastiveModel model, std::shared_ptr<const tokenizers::CLIPTokenizer> tokenizer,
                                       std::map<std::string, std::string> tokenizer_files)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), tokenizer_files_(std::move(tokenizer_files)) {}

ContrastiveEncoder::ContrastiveEncoder(ContrastiveConfig config, const std::string& tokenizer_dir) {
  tokenizer_ = std::make_shared<const tokenizers::CLIPTokenizer>(tokenizers::CLIPTokenizer::load(tokenizer_dir));
  tokenizer_files_ = tokenizers::TokenizerFolder::read(tokenizer_dir).files;
  config.text_config.vocab_size = tokenizer_->vocab_size();
  config.text_config.bos_token_id = tokenizer_->bos_id();
  config.text_config.eos_token_id = tokenizer_->eos_id();
  config.text_config.pad_token_id = tokenizer_->eos_id();
  model_ = ContrastiveModel(config);
}

ContrastiveEncoder ContrastiveEncoder::load(const std::string& folder) {
  const fs::path dir = folder;
  if (!fs::is_directory(dir)) throw LoadError(folder, "no such contrastive encoder folder");
  const ContrastiveConfig config = ContrastiveConfig::from_file((dir / "config.json").string());
  const fs::path tok_dir = dir / "tokenizer";
  if (!fs::is_directory(tok_dir)) throw LoadError(tok_dir.string(), "tokenizer folder is missing");
  auto tokenizer = std::make_shared<const tokenizers::CLIPTokenizer>(tokenizers::CLIPTokenizer::load(tok_dir.string()));
  if (tokenizer->vocab_size() != config.text_config.vocab_size || tokenizer->eos_id() != config.text_config.eos_token_id)
    throw LoadError(tok_dir.string(), "tokenizer does not match config.json (vocabulary " +
                                          std::to_string(tokenizer->vocab_size()) + " tokens, EOS " +
                                          std::to_string(tokenizer->eos_id()) + "; config: " +
                                          std::to_string(config.text_config.vocab_size) + ", " +
                                          std::to_string(config.text_config.eos_token_id) + ")");
  ContrastiveModel model(config);
  nn::load_module_weights(*model, dir.string());
  return ContrastiveEncoder(std::move(model), std::move(tokenizer), tokenizers::TokenizerFolder::read(tok_dir.string()).files);
}

void ContrastiveEncoder::save(const std::string& folder) const {
  tokenizers::TokenizerFolder{tokenizer_files_}.write((fs::path(folder) / "tokenizer").string());
  nn::save_module_folder(*model_.ptr(), config().to_json(), folder);
}

at::Tensor ContrastiveEncoder::preprocess_images(const at::Tensor& images) const {
  if (images.dim() != 4 || images.size(1) != 3 || images.size(2) < 1 || images.size(3) < 1)
    throw UsageError("contrastive encoder: expected images [B,3,H,W], got " + c10::str(images.sizes()));
  return io::square_resize(images, config().vision_config.image_size) * 2.0 - 1.0;
}

at::Tensor ContrastiveEncoder::tokenize(const std::vector<std::string>& texts) const {
  const int max_len = static_cast<int>(config().text_config.max_position_embeddings);
  const int64_t eos = tokenizer_->eos_id();
  at::Tensor ids = torch::empty({static_cast<int64_t>(texts.size()), max_len}, at::kLong);
  auto a = ids.accessor<int64_t, 2>();
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto row = tokenizer_->encode_padded(texts[i], eos, max_len);
    for (int j = 0; j < max_len; ++j) a[static_cast<int64_t>(i)][j] = row[static_cast<size_t>(j)];
  }
  return trim_eos_padding(ids, eos);
}

at::Tensor ContrastiveEncoder::embed_images(const at::Tensor& images) {
  torch::NoGradGuard no_grad;
  const int64_t p = config().projection_dim;
  if (images.dim() == 4 && images.size(0) == 0) return torch::empty({0, p});
  std::vector<at::Tensor> out;
  for (int64_t i = 0; i < images.size(0); i += kChunk) {
    const at::Tensor x = preprocess_images(images.narrow(0, i, std::min(kChunk, images.size(0) - i)));
    out.push_back(model_->encode_image(x).to(at::kFloat));
  }
  return torch::nn::functional::normalize(at::cat(out), torch::nn::functional::NormalizeFuncOptions().dim(1));
}

at::Tensor ContrastiveEncoder::embed_texts(const std::vector<std::string>& texts) {
  torch::NoGradGuard no_grad;
  if (texts.empty()) return torch::empty({0, config().projection_dim});
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < texts.size(); i += kChunk) {
    const std::vector<std::string> chunk(texts.begin() + static_cast<std::ptrdiff_t>(i),
                                         texts.begin() + static_cast<std::ptrdiff_t>(std::min(texts.size(), i + kChunk)));
    out.push_back(model_->encode_text(tokenize(chunk)).to(at::kFloat));
  }
  return torch::nn::functional::normalize(at::cat(out), torch::nn::functional::NormalizeFuncOptions().dim(1));
}

}  // namespace genvis::models
