// Datasets: deterministic sources of (image, caption) samples for training and evaluation.
//
//   std::unique_ptr<genvis::data::Dataset> ds = ...;      // e.g. ShapesDataset, EmojiDataset
//   genvis::data::Sample s = ds->get(i);                  // same i -> same sample, on any machine
//
// A dataset is a pure function of its options and the index: no hidden state, safe to call from
// several threads at once (the loader decodes in the background). Every sample carries its
// caption and facts about it (`meta`: e.g. a shapes scene's ground truth, an emoji's group).
#pragma once
#include "io/image.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace genvis::data {

struct Sample {
  io::Image image;     // 8-bit RGB
  std::string caption;
  nlohmann::json meta;  // dataset-specific ground truth (JSON object)
};

// Which samples a split holds. Held-out combinations of attributes are never in Train.
enum class Split { Train, HeldOut, All };
Split parse_split(const std::string& name);  // "train", "heldout", "all"; UsageError otherwise
const char* split_name(Split split);

class Dataset {
public:
  virtual ~Dataset() = default;
  virtual std::string name() const = 0;
  virtual size_t size() const = 0;
  // Throws UsageError for index >= size().
  virtual Sample get(size_t index) const = 0;
  // Whether a horizontal flip keeps the caption true (false for "left of", text, asymmetric glyphs).
  virtual bool flip_allowed(const Sample& sample) const {
    (void)sample;
    return true;
  }
};

}  // namespace genvis::data
