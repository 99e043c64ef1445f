// Video datasets: deterministic sources of (frames, caption) clips for training and evaluating
// video models, the video counterpart of Dataset.
//
//   auto clips = genvis::data::make_video_dataset({.name = "shapes-video", .resolution = 32, .num_frames = 9});
//   genvis::data::VideoSample c = clips->get(3);   // 9 frames, "a red square moving to the right"
//   c.meta["motion"]["type"];                      // "move"
//
// Like a Dataset, a pure function of its options and the index (thread-safe get()). Each split
// holds out combinations of subject x motion: Split::Train never yields them, Split::HeldOut
// yields only them, so a model can be asked for a motion it never saw on that subject.
#pragma once
#include "data/dataset.h"
#include "io/image.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::data {

struct VideoSample {
  std::vector<io::Image> frames;  // 8-bit RGB, all the same size
  std::string caption;
  nlohmann::json meta;            // dataset-specific ground truth, including "motion"
};

class VideoDataset {
public:
  virtual ~VideoDataset() = default;
  virtual std::string name() const = 0;
  virtual size_t size() const = 0;
  virtual int num_frames() const = 0;
  // Throws UsageError for index >= size().
  virtual VideoSample get(size_t index) const = 0;
};

}  // namespace genvis::data
