// What the training recipes' JSON configs share (genvis train ldm, genvis train contrastive):
// key checks that collect every problem instead of stopping at the first, typed reads, the
// "dataset" and "tokenizer" sections, and opening the configured dataset.
//
//   std::vector<std::string> problems;
//   recipe::check_keys(j, "config", {"dataset", "tokenizer"}, {"seed"}, problems);
//   recipe::read_dataset_section(j, c.dataset, problems);
//   if (!problems.empty()) throw UsageError(...all of them...);
#pragma once
#include "core/config_reader.h"
#include "data/dataset.h"
#include "data/registry.h"
#include "schedulers/parameterization.h"
#include "tokenizers/clip_tokenizer.h"
#include "train/trainer.h"

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::train::recipe {

// Key checks and typed reads (core/config_reader.h): every unknown, missing or wrong-typed key
// is collected as a problem naming its path ("unknown key config.colour").
using config::check_keys;
using config::read;

// UsageError "SOURCE: N problem(s): a; b; ..." when there are problems; nothing otherwise.
void throw_if_problems(const std::string& source, const std::vector<std::string>& problems);
// The JSON of a recipe config file (at most 16 MiB); LoadError naming the path when it is
// missing or not valid JSON.
nlohmann::json read_config_file(const std::string& path);

struct DatasetSection {
  std::string name;
  int64_t resolution = 0;
  std::string split = "train";
  int64_t size = 0;  // shapes: number of scenes (0 = dataset default); others: first `size` samples (0 = all)
  std::string path;  // folder datasets
};

// root["dataset"] (required keys name, resolution; optional split, size, path) into `out`.
void read_dataset_section(const nlohmann::json& root, DatasetSection& out, std::vector<std::string>& problems);
// The evaluation split of the classifier recipes: the first `num` samples of `split` (0: all).
struct EvalSection {
  std::string split = "heldout";
  int64_t num = 0;
};
// root["eval"] (optional; keys split, num) into `out`: a known split name, num >= 0.
void read_eval_section(const nlohmann::json& root, EvalSection& out, std::vector<std::string>& problems);
// root["tokenizer"]["vocab_size"] (>= 514: 256 bytes x 2 + BOS/EOS).
void read_tokenizer_section(const nlohmann::json& root, int64_t& vocab_size, std::vector<std::string>& problems);

data::DatasetSpec dataset_spec(const DatasetSection& d, data::Split split, uint64_t seed);
// The configured split (or `split` when given), cut to the first d.size samples for datasets
// other than shapes; UsageError when it is empty.
std::shared_ptr<const data::Dataset> open_dataset(const DatasetSection& d, uint64_t seed);

// section["train"] as a TrainConfig named `path` + ".train", its seed defaulting to `seed`;
// nothing when the section has no "train" (the caller reports a missing key); problems appended.
void read_train_section(const nlohmann::json& section, const std::string& path, uint64_t seed, TrainConfig& out,
                        std::vector<std::string>& problems);

// A training-noise density section {"density": "uniform" | "logit_normal", "mean", "std", "shift"}
// (all optional; named `path` in problems) read over `out`'s defaults; problems appended.
void read_noise_density(const nlohmann::json& section, const std::string& path, schedulers::FlowSigmaDensity& out,
                        std::vector<std::string>& problems);

// Sets a key the recipe derives in cfg (named `path` in problems); a different value given by the
// user is a problem.
void derive(nlohmann::json& cfg, const std::string& path, const char* key, const nlohmann::json& value,
            std::vector<std::string>& problems);
// A CLIPTextModel config (transformers keys) with what the recipe sets itself: vocab_size and the
// BOS/EOS/pad ids from the trained tokenizer (placeholders from `vocab_size` while it does not
// exist yet: tokenizer null), architectures, model_type, max_position_embeddings 77. Any of the
// tokenizer's keys given by the user is a problem (`path` names the section).
nlohmann::json derive_text_encoder_config(const nlohmann::json& given, const std::string& path,
                                          const tokenizers::CLIPTokenizer* tokenizer, int64_t vocab_size,
                                          std::vector<std::string>& problems);
// Whether `folder` holds a trained tokenizer (vocab.json and merges.txt): the tokenizer stage ran.
bool has_tokenizer(const std::string& folder);
// Trains a byte-level BPE on `captions` and writes the tokenizer folder (vocab.json, merges.txt).
void train_tokenizer(const std::vector<std::string>& captions, int64_t vocab_size, const std::string& folder);
// A recipe's stage bookkeeping: `stage` joins `skipped` (logged "stage X: finished before,
// skipped") when `finished`, else `ran`.
void mark_stage(const char* stage, bool finished, std::vector<std::string>& ran, std::vector<std::string>& skipped);
// JSON written atomically (2-space indent), its folder created.
void write_json(const std::filesystem::path& path, const nlohmann::json& j);
// Keeps the lines of a JSONL log whose "step" is <= `step` (a resumed run appends from there); a
// torn last line from a killed run is dropped. Nothing when the file does not exist.
void truncate_log(const std::string& path, int64_t step);

}  // namespace genvis::train::recipe
