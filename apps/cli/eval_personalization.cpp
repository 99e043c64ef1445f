// genvis eval personalization: subject fidelity, prompt fidelity and prior preservation of a
// personalised model (DreamBooth folder, LoRA, or textual-inversion embeddings) against its base.
#include "commands.h"
#include "default_model.h"

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "data/folder.h"
#include "eval/personalization.h"
#include "io/grid.h"
#include "io/image_tensor.h"
#include "pipelines/adapters.h"

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

namespace genvis::cli {
namespace {

namespace fs = std::filesystem;

struct GenerationSettings {
  int64_t steps = 20, size = 0, batch = 8;
  double cfg_scale = 5.0;
};

// One image per prompt (image i has seed + i): [N,3,H,W] in [0,1] on the CPU.
at::Tensor generate_all(pipelines::StableDiffusion& model, const std::vector<std::string>& prompts, uint64_t seed,
                        const GenerationSettings& g, const std::string& label) {
  pipelines::GenerateOptions o;
  o.seed = seed;
  o.steps = g.steps;
  o.cfg_scale = g.cfg_scale;
  o.width = o.height = g.size;
  return pipelines::generate_each(model, prompts, o, g.batch, label);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

}  // namespace

Command add_personalization_eval_command(CLI::App* eval) {
  struct Options {
    std::string base, tuned, lora, embeddings_dir, instance_dir, encoder, subject_prompt, class_prompt, placeholder,
        judge_words, out = "eval/personalization", name;
    std::vector<std::string> context_prompts;
    double lora_weight = 1.0;
    int64_t num = 16;
    uint64_t seed = 0;
    GenerationSettings g;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = eval->add_subcommand(
      "personalization", "Subject fidelity, prompt fidelity and prior preservation (class drift, diversity) of a "
                         "DreamBooth model, LoRA or embedding against its base model");
  cmd->add_option("--base", o->base, "Base model (default: the built-in model)");
  cmd->add_option("--tuned-model", o->tuned, "Fine-tuned diffusers folder (DreamBooth)");
  cmd->add_option("--lora", o->lora, "LoRA file applied to the base");
  cmd->add_option("--lora-weight", o->lora_weight, "LoRA strength")->capture_default_str();
  cmd->add_option("--embeddings-dir", o->embeddings_dir, "Textual-inversion embeddings added to the base");
  cmd->add_option("--instance-dir", o->instance_dir, "The subject's training images (PNG)")->required();
  cmd->add_option("--subject-prompt", o->subject_prompt, "Prompt naming the subject, e.g. \"a sks star\"")->required();
  cmd->add_option("--context-prompt", o->context_prompts, "New-context prompt with the subject (repeatable)")->required();
  cmd->add_option("--class-prompt", o->class_prompt, "The subject's class, e.g. \"a star\" (prior preservation)")->required();
  cmd->add_option("--placeholder", o->placeholder, "The subject's token in prompts (e.g. sks), replaced for the judge")
      ->required();
  cmd->add_option("--judge-words", o->judge_words, "Plain words for the subject that the judge reads instead of the "
                                                   "placeholder (e.g. red)")
      ->required();
  cmd->add_option("--encoder", o->encoder, "Contrastive encoder (default: the shipped genvis-contrastive-emoji)");
  cmd->add_option("--num", o->num, "Images per prompt")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Image i of a prompt has seed + i")->capture_default_str();
  cmd->add_option("--steps", o->g.steps, "Sampling steps")->capture_default_str();
  cmd->add_option("--cfg-scale", o->g.cfg_scale, "Guidance scale")->capture_default_str();
  cmd->add_option("--size", o->g.size, "Image size (0: the model's native size)")->capture_default_str();
  cmd->add_option("--name", o->name, "Row name (default: the tuned model, LoRA or embeddings folder name)");
  cmd->add_option("--out", o->out, "Output folder: result.json and samples.png")->capture_default_str();

  return {cmd, [o] {
    const int tuned_sources = !o->tuned.empty() + (!o->lora.empty() || !o->embeddings_dir.empty());
    if (tuned_sources != 1) throw UsageError("give --tuned-model DIR, or --lora FILE and/or --embeddings-dir DIR");
    if (o->num < 2) throw UsageError("--num must be >= 2");
    if (o->subject_prompt.find(o->placeholder) == std::string::npos)
      throw UsageError("--subject-prompt does not contain the placeholder \"" + o->placeholder + "\"");
    const std::string base_dir = o->base.empty() ? find_default_model() : o->base;
    const std::string encoder_dir = o->encoder.empty() ? find_shipped_model("genvis-contrastive-emoji", "config.json") : o->encoder;
    models::ContrastiveEncoder encoder = models::ContrastiveEncoder::load(encoder_dir);

    pipelines::ModelSource base_source, tuned_source;
    base_source.model = base_dir;
    tuned_source.model = o->tuned.empty() ? base_dir : o->tuned;
    pipelines::StableDiffusion base = pipelines::load_stable_diffusion(base_source);
    pipelines::StableDiffusion tuned = pipelines::load_stable_diffusion(tuned_source);
    if (!o->lora.empty()) pipelines::load_lora(tuned, o->lora, o->lora_weight);
    if (!o->embeddings_dir.empty()) pipelines::load_embeddings(tuned, o->embeddings_dir);
    if (o->g.size == 0) o->g.size = tuned.native_size();

    eval::PersonalizationImages set;
    data::FolderOptions fo;
    fo.path = o->instance_dir;
    fo.resolution = static_cast<int>(o->g.size);
    fo.bucketing = false;
    fo.bucket_step = 8;
    const data::FolderDataset instances(fo);
    if (instances.size() == 0) throw UsageError("--instance-dir " + o->instance_dir + " has no PNG images");
    std::vector<at::Tensor> rows;
    for (size_t i = 0; i < instances.size(); ++i)
      rows.push_back((io::image_to_tensor(instances.get(i).image.to_8bit().with_channels(3)) + 1) / 2);
    set.instance = at::cat(rows);

    const auto repeat = [&](const std::string& p) { return std::vector<std::string>(static_cast<size_t>(o->num), p); };
    set.subject = generate_all(tuned, repeat(o->subject_prompt), o->seed, o->g, "subject");
    std::vector<std::string> context_prompts;
    for (const auto& p : o->context_prompts)
      for (int64_t i = 0; i < o->num; ++i) {
        context_prompts.push_back(p);
        set.context_texts.push_back(replace_all(p, o->placeholder, o->judge_words));
      }
    set.context = generate_all(tuned, context_prompts, o->seed, o->g, "contexts");
    set.class_before = generate_all(base, repeat(o->class_prompt), o->seed, o->g, "class (base)");
    set.class_after = generate_all(tuned, repeat(o->class_prompt), o->seed, o->g, "class (tuned)");
    const eval::PersonalizationScores s = eval::score_personalization(encoder, set);

    const std::string name = !o->name.empty() ? o->name
                             : !o->tuned.empty() ? fs::path(o->tuned).parent_path().filename().string()
                             : !o->lora.empty()  ? fs::path(o->lora).stem().string()
                                                 : fs::path(o->embeddings_dir).filename().string();
    nlohmann::ordered_json result = {
        {"name", name},
        {"metrics",
         {{"subject_fidelity", s.subject_fidelity},
          {"prompt_fidelity", s.prompt_fidelity},
          {"class_drift", s.class_drift},
          {"class_diversity_before", s.class_diversity_before},
          {"class_diversity_after", s.class_diversity_after}}},
        {"setup",
         {{"base", base_dir}, {"tuned_model", o->tuned}, {"lora", o->lora}, {"embeddings_dir", o->embeddings_dir},
          {"instance_images", instances.size()}, {"subject_prompt", o->subject_prompt},
          {"context_prompts", o->context_prompts}, {"class_prompt", o->class_prompt}, {"judge_words", o->judge_words},
          {"num", o->num}, {"seed", o->seed}, {"steps", o->g.steps}, {"cfg_scale", o->g.cfg_scale}, {"size", o->g.size},
          {"encoder", encoder_dir}}}};
    fs::create_directories(o->out);
    write_file_atomic((fs::path(o->out) / "result.json").string(), result.dump(2) + "\n");

    // samples.png: a row each for the instances, the subject, every context prompt, the class before and after.
    std::vector<io::Image> images;
    std::vector<std::string> captions;
    const int64_t cols = std::min<int64_t>(o->num, 8);
    const auto add_row = [&](const at::Tensor& t, int64_t first, const std::string& caption) {
      for (int64_t i = 0; i < cols; ++i) {
        if (first + i < t.size(0)) images.push_back(io::tensor_to_image(t[first + i] * 2 - 1));
        else images.push_back(io::tensor_to_image(torch::ones({3, t.size(2), t.size(3)})));
        captions.push_back(i == 0 ? caption : "");
      }
    };
    add_row(set.instance, 0, "training images");
    add_row(set.subject, 0, o->subject_prompt);
    for (size_t p = 0; p < o->context_prompts.size(); ++p)
      add_row(set.context, static_cast<int64_t>(p) * o->num, o->context_prompts[p]);
    add_row(set.class_before, 0, o->class_prompt + " (base)");
    add_row(set.class_after, 0, o->class_prompt + " (tuned)");
    io::GridOptions grid;
    grid.font_size = 9;
    grid.max_caption_lines = 3;
    io::Image sheet;
    try {
      sheet = io::make_grid(images, static_cast<int>(cols), captions, grid);
    } catch (const Error&) {
      sheet = io::make_grid(images, static_cast<int>(cols));
    }
    io::write_png((fs::path(o->out) / "samples.png").string(), sheet);
    std::cout << result.dump(2) << "\n";
  }};
}

}  // namespace genvis::cli
