#include "commands.h"

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "data/loader.h"
#include "data/registry.h"
#include "io/grid.h"
#include "io/image_tensor.h"
#include "io/video.h"

#include <nlohmann/json.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

namespace genvis::cli {

namespace {

// preview: one row per clip, its frames left to right (a frame strip) with the caption below;
// info: size, frames, the first clip's caption and facts; export: NNNN.webp (lossless, 8 fps) +
// NNNN.txt.
template <class Options>
void run_video_dataset(const Options& o, bool info, bool exporter) {
  if (o.shuffle || o.augment) throw UsageError("--shuffle/--augment apply to image datasets only");
  const auto clips = data::make_video_dataset(o.spec);
  const auto n = static_cast<int64_t>(clips->size());
  if (info) {
    const data::VideoSample c = clips->get(0);
    nlohmann::ordered_json j = {{"name", clips->name()},
                                {"split", data::split_name(o.spec.split)},
                                {"size", clips->size()},
                                {"frames", clips->num_frames()},
                                {"resolution", {c.frames.at(0).width, c.frames.at(0).height}},
                                {"first_caption", c.caption},
                                {"first_meta", c.meta}};
    std::cout << j.dump(2) << "\n";
    return;
  }
  if (o.start >= n)
    throw UsageError("--start " + std::to_string(o.start) + " is past the dataset's " + std::to_string(n) + " clips");
  const int64_t end = std::min(n, o.start + o.count);
  if (exporter) {
    std::filesystem::create_directories(o.out_dir);
    int64_t written = 0;
    for (int64_t i = o.start; i < n && written < o.count; ++i) {
      const data::VideoSample c = clips->get(static_cast<size_t>(i));
      if (!o.grep.empty() && c.caption.find(o.grep) == std::string::npos) continue;
      char stem[24];
      std::snprintf(stem, sizeof(stem), "%04lld", static_cast<long long>(written++));
      const auto base = (std::filesystem::path(o.out_dir) / stem).string();
      std::vector<at::Tensor> frames;
      for (const auto& f : c.frames) frames.push_back((io::image_to_tensor(f) + 1) / 2);  // [1,3,H,W] in [0,1]
      io::write_video(base + ".webp", at::cat(frames, 0).permute({1, 0, 2, 3}), 8, {});
      write_file_atomic(base + ".txt", c.caption + "\n");
      std::cout << base << ".webp\t" << c.caption << "\n";
    }
    if (written == 0) throw UsageError("no clip of " + clips->name() + " matches" + (o.grep.empty() ? "" : " '" + o.grep + "'"));
    return;
  }
  std::vector<io::Image> strips;
  std::vector<std::string> captions;
  for (int64_t i = o.start; i < end; ++i) {
    data::VideoSample c = clips->get(static_cast<size_t>(i));
    strips.push_back(io::frame_strip(c.frames));
    captions.push_back(std::move(c.caption));
  }
  io::GridOptions grid;
  grid.font_size = o.spec.resolution < 96 ? 10 : 14;
  grid.max_caption_lines = 2;
  io::write_png(o.output, io::make_grid(strips, o.columns ? static_cast<int>(o.columns) : 1, captions, grid));
  log_info("wrote " + o.output + " (" + std::to_string(strips.size()) + " clips of " + std::to_string(clips->num_frames()) +
           " frames of " + clips->name() + ", " + std::to_string(n) + " in the " + data::split_name(o.spec.split) +
           " split)");
}

}  // namespace

Command add_dataset_command(CLI::App& app) {
  struct Options {
    data::DatasetSpec spec;
    std::string split = "train", output = "dataset.png", out_dir, grep;
    int64_t count = 16, start = 0, columns = 0, grid_resolution = 0;
    bool shuffle = false, augment = false, json = false;
  };
  auto o = std::make_shared<Options>();
  std::string names;
  for (const auto& n : data::dataset_names()) names += (names.empty() ? "" : ", ") + n;
  CLI::App* cmd = app.add_subcommand("dataset", "Look at the built-in datasets (" + names + ")");
  cmd->require_subcommand(1);
  const auto add_common = [&](CLI::App* sub) {
    sub->add_option("name", o->spec.name, "Dataset: " + names)->required();
    sub->add_option("--path", o->spec.path, "folder: the directory of images (+ same-named .txt captions)");
    sub->add_option("--resolution", o->spec.resolution, "Rendering size in pixels")->capture_default_str();
    sub->add_option("--split", o->split, "train, heldout or all")->capture_default_str();
    sub->add_option("--seed", o->spec.seed, "shapes: scene stream; folder: crops; with --shuffle: the order")
        ->capture_default_str();
    sub->add_option("--frames", o->spec.num_frames, "Video datasets: frames per clip (default: the dataset's own)");
  };
  CLI::App* preview = cmd->add_subcommand("preview", "Write a captioned contact sheet of samples");
  add_common(preview);
  preview->add_option("-o,--output", o->output, "Output PNG")->capture_default_str();
  preview->add_option("--count", o->count, "Number of samples")->capture_default_str();
  preview->add_option("--start", o->start, "First sample index (without --shuffle)")->capture_default_str();
  preview->add_option("--columns", o->columns, "Columns (0 = square)")->capture_default_str();
  preview->add_flag("--shuffle", o->shuffle, "The training order (as the loader draws it) instead of index order");
  preview->add_flag("--augment", o->augment, "Show training crops and flips (random crop, horizontal flip)");
  CLI::App* info = cmd->add_subcommand("info", "Size and one sample's caption and facts, as JSON");
  add_common(info);
  CLI::App* exporter = cmd->add_subcommand(
      "export", "Write samples as NNNN.png + NNNN.txt (the folder convention of train lora/dreambooth and the folder dataset)");
  add_common(exporter);
  exporter->add_option("--out", o->out_dir, "Output folder")->required();
  exporter->add_option("--grep", o->grep, "Only samples whose caption contains this text");
  exporter->add_option("--count", o->count, "At most this many samples")->capture_default_str();
  exporter->add_option("--start", o->start, "First sample index")->capture_default_str();

  return {cmd, [o, preview, info, exporter] {
    o->spec.split = data::parse_split(o->split);
    if (o->count < 1 || o->count > 1024) throw UsageError("--count must be 1..1024");
    if (o->start < 0) throw UsageError("--start must be >= 0");
    if (o->spec.num_frames < 0) throw UsageError("--frames must be >= 1");
    if (data::is_video_dataset(o->spec.name)) {
      run_video_dataset(*o, info->parsed(), exporter->parsed());
      return;
    }
    if (o->spec.num_frames) throw UsageError("--frames applies to video datasets only");
    const auto dataset = data::make_dataset(o->spec);
    if (info->parsed()) {
      const data::Sample s = dataset->get(0);
      nlohmann::ordered_json j = {{"name", dataset->name()},
                                  {"split", data::split_name(o->spec.split)},
                                  {"size", dataset->size()},
                                  {"resolution", {s.image.width, s.image.height}},
                                  {"first_caption", s.caption},
                                  {"first_meta", s.meta}};
      std::cout << j.dump(2) << "\n";
      return;
    }
    if (exporter->parsed()) {
      std::filesystem::create_directories(o->out_dir);
      int64_t written = 0;
      for (size_t i = static_cast<size_t>(o->start); i < dataset->size() && written < o->count; ++i) {
        const data::Sample s = dataset->get(i);
        if (!o->grep.empty() && s.caption.find(o->grep) == std::string::npos) continue;
        char stem[24];
        std::snprintf(stem, sizeof(stem), "%04lld", static_cast<long long>(written++));
        const auto base = std::filesystem::path(o->out_dir) / stem;
        io::write_png(base.string() + ".png", s.image.to_8bit().with_channels(3));
        write_file_atomic(base.string() + ".txt", s.caption + "\n");
        std::cout << base.string() << ".png\t" << s.caption << "\n";
      }
      if (written == 0) throw UsageError("no sample of " + dataset->name() + " matches" + (o->grep.empty() ? "" : " '" + o->grep + "'"));
      return;
    }
    (void)preview;
    const auto n = static_cast<int64_t>(dataset->size());
    std::vector<io::Image> images;
    std::vector<std::string> captions;
    if (o->shuffle || o->augment) {
      data::LoaderOptions lo;
      lo.batch_size = std::min<int64_t>(o->count, n);
      lo.resolution = o->spec.resolution;
      lo.seed = o->spec.seed;
      lo.shuffle = o->shuffle;
      lo.random_crop = o->augment;
      lo.hflip = o->augment;
      lo.prefetch = 0;
      data::DataLoader loader(dataset, lo);
      const data::Batch b = loader.batch(o->start / lo.batch_size);
      for (int64_t i = 0; i < b.images.size(0); ++i) {
        images.push_back(io::tensor_to_image(b.images[i]));
        captions.push_back(b.captions[static_cast<size_t>(i)]);
      }
    } else {
      if (o->start >= n) throw UsageError("--start " + std::to_string(o->start) + " is past the dataset's " +
                                          std::to_string(n) + " samples");
      for (int64_t i = o->start; i < std::min(n, o->start + o->count); ++i) {
        data::Sample s = dataset->get(static_cast<size_t>(i));
        images.push_back(s.image.to_8bit().with_channels(3));
        captions.push_back(std::move(s.caption));
      }
    }
    io::GridOptions grid;
    grid.font_size = o->spec.resolution < 96 ? 10 : 14;
    grid.max_caption_lines = 3;
    io::write_png(o->output, io::make_grid(images, static_cast<int>(o->columns), captions, grid));
    log_info("wrote " + o->output + " (" + std::to_string(images.size()) + " samples of " + dataset->name() + ", " +
             std::to_string(n) + " in the " + data::split_name(o->spec.split) + " split)");
  }};
}

}  // namespace genvis::cli
