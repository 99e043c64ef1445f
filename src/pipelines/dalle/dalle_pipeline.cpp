#include "pipelines/dalle/dalle_pipeline.h"

#include "core/config_reader.h"
#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "models/dalle/dalle_io.h"
#include "pipelines/common/noise.h"
#include "pipelines/dalle/dalle_sampling.h"

#include <filesystem>
#include <torch/torch.h>

namespace genvis::pipelines {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

void copy_folder(const fs::path& from, const fs::path& to) {
  if (!fs::is_directory(from)) throw LoadError(from.string(), "folder is missing");
  fs::create_directories(to);
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

template <typename T>
T extra(const json& extras, const char* key, T fallback) {
  if (!extras.contains(key)) return fallback;
  try {
    return extras.at(key).get<T>();
  } catch (const json::exception&) {
    throw UsageError(std::string("'extras.") + key + "' has the wrong type (" + extras.at(key).dump() + ")");
  }
}

}  // namespace

DalleModel load_dalle_model(const ModelSource& source) {
  const fs::path root = source.model;
  if (!source.unet.empty() || !source.vae.empty() || !source.text_encoder.empty() || !source.text_encoder_2.empty() ||
      !source.vocab.empty() || !source.scheduler_config.empty() || !source.image_encoder.empty())
    throw UsageError("a DALL·E folder has its own components; component overrides (--unet, --vae, ...) are "
                     "Stable Diffusion's");
  if (!fs::is_regular_file(root / "model_index.json")) throw LoadError(root.string(), "not a DALL·E folder (no model_index.json)");
  DalleModel m;
  m.tokenizer.emplace(tokenizers::CLIPTokenizer::load((root / "tokenizer").string()));
  m.dvae = models::load_dvae((root / "dvae").string(), source.device, source.dtype);
  m.transformer = models::load_dalle_transformer((root / "transformer").string(), source.device, source.dtype);
  const auto& c = m.transformer->config;
  const auto& v = m.dvae->config;
  if (m.tokenizer->vocab_size() > c.text_vocab_size)
    throw LoadError((root / "tokenizer").string(), "has " + std::to_string(m.tokenizer->vocab_size()) +
                                                       " tokens, the transformer's text_vocab_size is " +
                                                       std::to_string(c.text_vocab_size));
  if (v.vocab_size != c.image_vocab_size || v.grid_size() != c.image_rows || v.grid_size() != c.image_cols)
    throw LoadError((root / "transformer" / "config.json").string(),
                    "image_vocab_size " + std::to_string(c.image_vocab_size) + " and grid " +
                        std::to_string(c.image_rows) + "x" + std::to_string(c.image_cols) +
                        " do not match the dVAE's " + std::to_string(v.vocab_size) + " codes on a " +
                        std::to_string(v.grid_size()) + "x" + std::to_string(v.grid_size()) + " grid");
  if (fs::is_directory(root / "reranker")) m.reranker.emplace(models::ContrastiveEncoder::load((root / "reranker").string()));
  const std::string name = root.filename().string();
  m.name = name.empty() ? root.parent_path().filename().string() : name;
  return m;
}

void save_dalle_model(const std::string& tokenizer_dir, models::DiscreteVAE& dvae, models::DalleTransformer& transformer,
                      const std::string& reranker_dir, const std::string& folder) {
  const fs::path root = folder;
  copy_folder(tokenizer_dir, root / "tokenizer");
  models::save_dvae(dvae, (root / "dvae").string());
  models::save_dalle_transformer(transformer, (root / "transformer").string());
  json index = {{"_class_name", kDalleClass},
                {"tokenizer", json::array({"genvis", "CLIPTokenizer"})},
                {"dvae", json::array({"genvis", "DiscreteVAE"})},
                {"transformer", json::array({"genvis", "DalleTransformer"})}};
  if (!reranker_dir.empty()) {
    copy_folder(reranker_dir, root / "reranker");
    index["reranker"] = json::array({"genvis", "ContrastiveEncoder"});
  }
  write_file_atomic((root / "model_index.json").string(), index.dump(2) + "\n");
}

at::Tensor dalle_caption_ids(const tokenizers::CLIPTokenizer& tokenizer, const models::DalleConfig& config,
                             const std::vector<std::string>& captions, int64_t* cut) {
  std::vector<std::vector<int64_t>> tokens;
  if (cut) *cut = 0;
  for (const auto& caption : captions) {
    auto ids = tokenizer.encode(caption);
    if (static_cast<int64_t>(ids.size()) > config.text_len) {
      ids.resize(static_cast<size_t>(config.text_len));
      if (cut) ++*cut;
    }
    tokens.push_back(std::move(ids));
  }
  return models::dalle_text_ids(tokens, config);
}

at::Tensor rerank_scores(models::ContrastiveEncoder& reranker, const at::Tensor& images,
                         const std::vector<std::string>& captions) {
  const at::Tensor a = reranker.embed_images(images.to(at::kFloat).cpu());
  const at::Tensor b = reranker.embed_texts(captions);
  return (a * b).sum(1);
}

DallePipeline::DallePipeline(DalleModel model) : model_(std::move(model)) {
  const int64_t s = model_.dvae->config.image_size;
  info_.class_name = kDalleClass;
  info_.family = "dalle";
  info_.name = model_.name;
  info_.native_width = info_.native_height = s;
  info_.size_multiple = s;  // the dVAE's grid makes one size
  info_.max_batch = 64;
  info_.supports.text_to_image = true;
  info_.supports.image_to_image = true;  // completion of the top rows
  info_.supports.guidance = true;
  info_.defaults.guidance = 1.0;
  info_.extras = {"temperature", "top_k", "top_p", "rerank", "use_cache", "keep_rows", "reranker"};
}

Result DallePipeline::run(const Request& r, const Callbacks& callbacks) {
  const auto& c = model_.transformer->config;
  const int64_t size = model_.dvae->config.image_size;
  if (*r.width != size || *r.height != size)
    throw UsageError("'width'/'height': this DALL·E makes " + std::to_string(size) + "x" + std::to_string(size) +
                     " images only, not " + std::to_string(*r.width) + "x" + std::to_string(*r.height));
  // 1. Settings.
  DalleSampleOptions o;
  o.sampling.temperature = extra(r.extras, "temperature", 1.0);
  o.sampling.top_k = extra<int64_t>(r.extras, "top_k", 0);
  o.sampling.top_p = extra(r.extras, "top_p", 1.0);
  o.use_cache = extra(r.extras, "use_cache", true);
  o.guidance = *r.guidance;
  schedulers::validate(o.sampling, "extras.");
  const int64_t rerank = extra<int64_t>(r.extras, "rerank", 1);
  if (rerank < 1 || rerank > 1024) throw UsageError("'extras.rerank' must be 1..1024 candidates per image, got " + std::to_string(rerank));
  // The model's reranker, or one given for this request.
  std::optional<models::ContrastiveEncoder> given;
  if (r.extras.contains("reranker")) given.emplace(models::ContrastiveEncoder::load(extra<std::string>(r.extras, "reranker", "")));
  models::ContrastiveEncoder* reranker = given ? &*given : model_.reranker ? &*model_.reranker : nullptr;
  if (rerank > 1 && !reranker)
    throw UsageError("'extras.rerank' needs a reranker (this model has no reranker/ folder; give 'extras.reranker': "
                     "a contrastive encoder folder)");
  if (r.extras.contains("keep_rows") && !r.init_image.defined())
    throw UsageError("'extras.keep_rows' applies only with 'init_image' (image completion)");
  const std::vector<std::string> prompts = prompts_of(r);

  // 2. Known tokens (completion): the init image's top rows.
  torch::NoGradGuard no_grad;
  const auto device = model_.dvae->encoder->input->w.device();
  const auto dtype = model_.dvae->encoder->input->w.scalar_type();
  at::Tensor known;
  int64_t keep_rows = 0;
  if (r.init_image.defined()) {
    keep_rows = extra<int64_t>(r.extras, "keep_rows", c.image_rows / 2);
    if (keep_rows < 1 || keep_rows >= c.image_rows)
      throw UsageError("'extras.keep_rows' must be 1.." + std::to_string(c.image_rows - 1) + ", got " + std::to_string(keep_rows));
    const at::Tensor codes = model_.dvae->encode(((r.init_image.to(at::kFloat) + 1) / 2).to(device, dtype));
    known = codes.flatten(1).narrow(1, 0, keep_rows * c.image_cols).cpu();
  }

  // 3. Tokens, `rerank` candidates per image, each image's candidates from its own seed.
  const int64_t n = r.batch * rerank;
  std::vector<std::string> rows;
  std::vector<Rng> rngs;
  for (int64_t i = 0; i < r.batch; ++i)
    for (int64_t j = 0; j < rerank; ++j) {
      rows.push_back(prompts[static_cast<size_t>(i)]);
      rngs.emplace_back(sampler_seed(r.seed + static_cast<uint64_t>(i)) + static_cast<uint64_t>(j) * 0x9E3779B97F4A7C15ULL);
    }
  if (known.defined()) o.known = known.expand({n, known.size(1)}).contiguous();
  int64_t cut = 0;
  const at::Tensor text = dalle_caption_ids(*model_.tokenizer, c, rows, &cut);
  if (cut > 0)
    log_warn("the prompt is longer than the model's " + std::to_string(c.text_len) +
             " text tokens: its end is cut off and does not condition the image");
  const at::Tensor tokens = dalle_sample(model_.transformer, text, o, rngs, callbacks.on_step, callbacks.cancelled);

  // 4. Decode, then keep each image's best candidate.
  at::Tensor images = model_.dvae->decode(tokens.view({n, c.image_rows, c.image_cols}).to(device)).to(at::kFloat).cpu();
  at::Tensor best_scores, kept = tokens.view({n, c.image_rows, c.image_cols});
  if (rerank > 1) {
    const at::Tensor scores = rerank_scores(*reranker, images, rows).view({r.batch, rerank});
    const auto [top, best] = scores.max(1);
    best_scores = top;
    const at::Tensor index = at::arange(r.batch, at::kLong) * rerank + best;
    images = images.index_select(0, index);
    kept = kept.index_select(0, index);
  }
  Result out;
  out.samples = images.clamp(0, 1);
  out.latents = kept.cpu();  // the image tokens [B, rows, cols]
  for (int64_t i = 0; i < r.batch; ++i) {
    io::GenerationParameters p;
    p.prompt = prompts[static_cast<size_t>(i)];
    p.cfg_scale = *r.guidance;
    p.seed = r.seed + static_cast<uint64_t>(i);
    p.width = p.height = static_cast<int>(size);
    p.model = model_.name;
    p.extra.push_back({"Temperature", json(o.sampling.temperature).dump()});
    if (o.sampling.top_k > 0) p.extra.push_back({"Top k", std::to_string(o.sampling.top_k)});
    if (o.sampling.top_p < 1) p.extra.push_back({"Top p", json(o.sampling.top_p).dump()});
    if (rerank > 1) {
      p.extra.push_back({"Rerank", std::to_string(rerank)});
      p.extra.push_back({"Rerank score", json(best_scores[i].item<double>()).dump()});
    }
    if (keep_rows > 0) p.extra.push_back({"Kept rows", std::to_string(keep_rows)});
    out.parameters.push_back(p);
  }
  return out;
}

std::unique_ptr<Pipeline> load_dalle_pipeline(const ModelSource& source) {
  return std::make_unique<DallePipeline>(load_dalle_model(source));
}

}  // namespace genvis::pipelines
