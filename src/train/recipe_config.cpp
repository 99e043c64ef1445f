#include "train/recipe_config.h"

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "tokenizers/bpe_trainer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace genvis::train::recipe {

using json = nlohmann::json;

namespace {

// The first n samples of another dataset.
class FirstN : public data::Dataset {
public:
  FirstN(std::shared_ptr<const data::Dataset> base, size_t n) : base_(std::move(base)), n_(n) {}
  std::string name() const override { return base_->name(); }
  size_t size() const override { return n_; }
  data::Sample get(size_t index) const override {
    if (index >= n_) throw UsageError("sample " + std::to_string(index) + " is past the dataset's " + std::to_string(n_));
    return base_->get(index);
  }
  bool flip_allowed(const data::Sample& s) const override { return base_->flip_allowed(s); }

private:
  std::shared_ptr<const data::Dataset> base_;
  size_t n_;
};

using config::section;

}  // namespace

void throw_if_problems(const std::string& source, const std::vector<std::string>& problems) {
  if (!problems.empty()) throw UsageError(source + ": " + config::describe(problems));
}

json read_config_file(const std::string& path) { return config::read_file(path); }

void read_dataset_section(const json& root, DatasetSection& out, std::vector<std::string>& problems) {
  const json ds = section(root, "dataset");
  if (!check_keys(ds, "dataset", {"name", "resolution"}, {"split", "size", "path"}, problems)) return;
  read(ds, "dataset", "name", out.name, problems);
  read(ds, "dataset", "resolution", out.resolution, problems);
  read(ds, "dataset", "split", out.split, problems);
  read(ds, "dataset", "size", out.size, problems);
  read(ds, "dataset", "path", out.path, problems);
  if (ds.contains("resolution") && out.resolution < 8) problems.push_back("dataset.resolution must be >= 8");
  if (out.size < 0) problems.push_back("dataset.size must be >= 0");
  try {
    data::parse_split(out.split);
  } catch (const Error& e) {
    problems.push_back(std::string("dataset.split: ") + e.what());
  }
}

void read_eval_section(const json& root, EvalSection& out, std::vector<std::string>& problems) {
  if (!root.contains("eval")) return;
  const json& ev = root.at("eval");
  if (!check_keys(ev, "eval", {}, {"split", "num"}, problems)) return;
  read(ev, "eval", "split", out.split, problems);
  read(ev, "eval", "num", out.num, problems);
  try {
    data::parse_split(out.split);
  } catch (const Error& e) {
    problems.push_back(std::string("eval.split: ") + e.what());
  }
  if (out.num < 0) problems.push_back("eval.num must be >= 0");
}

void read_tokenizer_section(const json& root, int64_t& vocab_size, std::vector<std::string>& problems) {
  const json tok = section(root, "tokenizer");
  if (!check_keys(tok, "tokenizer", {"vocab_size"}, {}, problems)) return;
  read(tok, "tokenizer", "vocab_size", vocab_size, problems);
  if (tok.contains("vocab_size") && vocab_size < 514) problems.push_back("tokenizer.vocab_size must be >= 514");
}

data::DatasetSpec dataset_spec(const DatasetSection& d, data::Split split, uint64_t seed) {
  data::DatasetSpec spec;
  spec.name = d.name;
  spec.resolution = static_cast<int>(d.resolution);
  spec.split = split;
  spec.seed = seed;
  spec.path = d.path;
  if (d.name == "shapes") spec.size = static_cast<size_t>(d.size);
  return spec;
}

std::shared_ptr<const data::Dataset> open_dataset(const DatasetSection& d, uint64_t seed) {
  auto ds = data::make_dataset(dataset_spec(d, data::parse_split(d.split), seed));
  if (d.name != "shapes" && d.size > 0 && static_cast<size_t>(d.size) < ds->size())
    ds = std::make_shared<FirstN>(ds, static_cast<size_t>(d.size));
  if (ds->size() == 0) throw UsageError("dataset " + d.name + " has no samples in the requested split");
  return ds;
}

void read_noise_density(const nlohmann::json& section, const std::string& path, schedulers::FlowSigmaDensity& out,
                        std::vector<std::string>& problems) {
  if (!check_keys(section, path, {}, {"density", "mean", "std", "shift"}, problems)) return;
  std::string density = out.kind == schedulers::FlowSigmaDensity::Kind::Uniform ? "uniform" : "logit_normal";
  read(section, path, "density", density, problems);
  read(section, path, "mean", out.mean, problems);
  read(section, path, "std", out.std, problems);
  read(section, path, "shift", out.shift, problems);
  try {
    out.kind = schedulers::FlowSigmaDensity::parse(density);
  } catch (const Error& e) {
    problems.push_back(path + ".density: " + e.what());
  }
  if (!(out.std > 0)) problems.push_back(path + ".std must be positive");
  if (!(out.shift > 0)) problems.push_back(path + ".shift must be positive");
}

void read_train_section(const nlohmann::json& section, const std::string& path, uint64_t seed, TrainConfig& out,
                        std::vector<std::string>& problems) {
  if (!section.is_object() || !section.contains("train")) return;
  nlohmann::json t = section.at("train");
  if (t.is_object() && !t.contains("seed")) t["seed"] = seed;
  try {
    out = TrainConfig::from_json(t, path.empty() ? "train" : path + ".train");
  } catch (const Error& e) {
    problems.push_back(e.what());
  }
}

void derive(json& cfg, const std::string& path, const char* key, const json& value, std::vector<std::string>& problems) {
  if (cfg.contains(key) && cfg[key] != value) {
    problems.push_back(path + "." + key + " is set by the recipe to " + value.dump() + ", got " + cfg[key].dump());
    return;
  }
  cfg[key] = value;
}

json derive_text_encoder_config(const json& given, const std::string& path, const tokenizers::CLIPTokenizer* tokenizer,
                                int64_t vocab_size, std::vector<std::string>& problems) {
  json d = given;
  for (const char* key : {"vocab_size", "bos_token_id", "eos_token_id", "pad_token_id", "architectures"})
    if (given.contains(key)) problems.push_back(path + "." + key + " is set by the recipe from the tokenizer");
  d["vocab_size"] = tokenizer ? tokenizer->vocab_size() : std::max<int64_t>(vocab_size, 514);
  d["bos_token_id"] = tokenizer ? tokenizer->bos_id() : 0;
  // Padding is with EOS (encode_padded(text, eos)); pooling at the first EOS.
  d["eos_token_id"] = tokenizer ? tokenizer->eos_id() : 1;
  d["pad_token_id"] = tokenizer ? tokenizer->eos_id() : 1;
  d["architectures"] = json::array({"CLIPTextModel"});
  d["model_type"] = "clip_text_model";
  derive(d, path, "max_position_embeddings", tokenizers::CLIPTokenizer::kMaxLength, problems);
  return d;
}

bool has_tokenizer(const std::string& folder) {
  return std::filesystem::exists(std::filesystem::path(folder) / "vocab.json") &&
         std::filesystem::exists(std::filesystem::path(folder) / "merges.txt");
}

void train_tokenizer(const std::vector<std::string>& captions, int64_t vocab_size, const std::string& folder) {
  const auto vocab = tokenizers::train_bpe(captions, {.vocab_size = vocab_size});
  tokenizers::save_tokenizer_folder(vocab, folder);
  log_info("tokenizer: " + std::to_string(vocab.tokens.size()) + " tokens from " + std::to_string(captions.size()) +
           " captions -> " + folder);
}

void mark_stage(const char* stage, bool finished, std::vector<std::string>& ran, std::vector<std::string>& skipped) {
  (finished ? skipped : ran).push_back(stage);
  if (finished) log_info(std::string("stage ") + stage + ": finished before, skipped");
}

void write_json(const std::filesystem::path& path, const json& j) {
  std::filesystem::create_directories(path.parent_path());
  write_file_atomic(path.string(), j.dump(2) + "\n");
}

void truncate_log(const std::string& path, int64_t step) {
  if (!std::filesystem::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    try {
      if (json::parse(line).value("step", int64_t{0}) <= step) kept += line + "\n";
    } catch (const json::exception&) {
      // a torn last line from a killed run
    }
  }
  write_file_atomic(path, kept);
}

}  // namespace genvis::train::recipe
