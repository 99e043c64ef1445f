#include "models/damsm/damsm_encoder.h"

#include "core/error.h"
#include "io/image_tensor.h"
#include "nn/module_folder.h"
#include "tokenizers/tokenizer_folder.h"

#include <algorithm>
#include <filesystem>
#include <torch/torch.h>

namespace genvis::models {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kChunk = 256;

// Rows [i, i + n) of every tensor's first dimension.
at::Tensor rows(const at::Tensor& t, int64_t i, int64_t n) { return t.narrow(0, i, std::min(n, t.size(0) - i)); }

}  // namespace

at::Tensor DamsmTokens::mask() const {
  return at::arange(ids.size(1), lengths.options()).unsqueeze(0) < lengths.unsqueeze(1);
}

DamsmEncoder::DamsmEncoder(DamsmModel model, std::shared_ptr<const tokenizers::CLIPTokenizer> tokenizer,
                           std::map<std::string, std::string> tokenizer_files)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), tokenizer_files_(std::move(tokenizer_files)) {}

DamsmEncoder::DamsmEncoder(DamsmConfig config, const std::string& tokenizer_dir) {
  tokenizer_ = std::make_shared<const tokenizers::CLIPTokenizer>(tokenizers::CLIPTokenizer::load(tokenizer_dir));
  tokenizer_files_ = tokenizers::TokenizerFolder::read(tokenizer_dir).files;
  config.text_config.vocab_size = tokenizer_->vocab_size();
  model_ = DamsmModel(config);
}

DamsmEncoder DamsmEncoder::load(const std::string& folder) {
  const fs::path dir = folder;
  if (!fs::is_directory(dir)) throw LoadError(folder, "no such DAMSM folder");
  const DamsmConfig config = DamsmConfig::from_file((dir / "config.json").string());
  const fs::path tok_dir = dir / "tokenizer";
  if (!fs::is_directory(tok_dir)) throw LoadError(tok_dir.string(), "tokenizer folder is missing");
  auto tokenizer = std::make_shared<const tokenizers::CLIPTokenizer>(tokenizers::CLIPTokenizer::load(tok_dir.string()));
  if (tokenizer->vocab_size() != config.text_config.vocab_size)
    throw LoadError(tok_dir.string(), "tokenizer does not match config.json (vocabulary " +
                                          std::to_string(tokenizer->vocab_size()) + " tokens; config: " +
                                          std::to_string(config.text_config.vocab_size) + ")");
  DamsmModel model(config);
  nn::load_module_weights(*model, dir.string());
  return DamsmEncoder(std::move(model), std::move(tokenizer), tokenizers::TokenizerFolder::read(tok_dir.string()).files);
}

void DamsmEncoder::save(const std::string& folder) const {
  tokenizers::TokenizerFolder{tokenizer_files_}.write((fs::path(folder) / "tokenizer").string());
  nn::save_module_folder(*model_.ptr(), config().to_json(), folder);
}

DamsmTokens DamsmEncoder::tokenize(const std::vector<std::string>& texts) const {
  const auto max_len = static_cast<size_t>(config().text_config.max_length);
  std::vector<std::vector<int64_t>> encoded;
  size_t longest = 1;
  for (const auto& text : texts) {
    std::vector<int64_t> ids = tokenizer_->encode(text);
    if (ids.empty()) ids.push_back(tokenizer_->eos_id());
    if (ids.size() > max_len) ids.resize(max_len);
    longest = std::max(longest, ids.size());
    encoded.push_back(std::move(ids));
  }
  const auto b = static_cast<int64_t>(texts.size());
  DamsmTokens t{torch::zeros({b, static_cast<int64_t>(longest)}, at::kLong), torch::empty({b}, at::kLong)};
  auto ids = t.ids.accessor<int64_t, 2>();
  auto lengths = t.lengths.accessor<int64_t, 1>();
  for (int64_t i = 0; i < b; ++i) {
    const auto& row = encoded[static_cast<size_t>(i)];
    lengths[i] = static_cast<int64_t>(row.size());
    for (size_t j = 0; j < row.size(); ++j) ids[i][static_cast<int64_t>(j)] = row[j];
  }
  return t;
}

at::Tensor DamsmEncoder::preprocess_images(const at::Tensor& images) const {
  if (images.dim() != 4 || images.size(1) != 3)
    throw UsageError("DAMSM: expected images [B,3,H,W], got " + c10::str(images.sizes()));
  return io::square_resize(images, config().vision_config.image_size) * 2.0 - 1.0;
}

DamsmTexts DamsmEncoder::encode_texts(const std::vector<std::string>& texts) {
  torch::NoGradGuard no_grad;
  model_->eval();
  const DamsmTokens tokens = tokenize(texts);
  const int64_t d = config().embedding_dim;
  if (texts.empty()) return {torch::empty({0, d, 1}), torch::empty({0, 1}, at::kBool), torch::empty({0, d})};
  std::vector<at::Tensor> words, sentences;
  for (int64_t i = 0; i < tokens.ids.size(0); i += kChunk) {
    const auto f = model_->encode_text(rows(tokens.ids, i, kChunk), rows(tokens.lengths, i, kChunk));
    words.push_back(f.words.to(at::kFloat));
    sentences.push_back(f.sentence.to(at::kFloat));
  }
  return {at::cat(words), tokens.mask(), at::cat(sentences)};
}

DamsmImageFeatures DamsmEncoder::encode_images(const at::Tensor& images) {
  torch::NoGradGuard no_grad;
  model_->eval();
  const at::Tensor x = preprocess_images(images);
  const int64_t d = config().embedding_dim, r = config().vision_config.region_side();
  if (x.size(0) == 0) return {torch::empty({0, d, r * r}), torch::empty({0, d})};
  std::vector<at::Tensor> regions, globals;
  for (int64_t i = 0; i < x.size(0); i += kChunk) {
    const auto f = model_->encode_image(rows(x, i, kChunk));
    regions.push_back(f.regions.to(at::kFloat));
    globals.push_back(f.global.to(at::kFloat));
  }
  return {at::cat(regions), at::cat(globals)};
}

}  // namespace genvis::models
