// A tiny test-only pipeline family, "genvis.TestGradientPipeline": one forward pass (like a GAN
// generator), no steps, no guidance. It shows what adding a family takes (docs/adding_a_model.md):
// a Pipeline subclass, a loader, and one registration line.
//
// Its model folder holds model_index.json {"_class_name": "genvis.TestGradientPipeline"} and
// config.json {"sample_size": S, "channels_bias": [r, g, b]}: an image is a horizontal gradient
// tinted by the prompt's length plus seeded noise, so prompts and seeds give different images.
#pragma once
#include "pipelines/pipeline.h"

#include <memory>
#include <string>

namespace genvis::test {

inline constexpr const char* kTestFamilyClass = "genvis.TestGradientPipeline";

// Registers the family once (later calls do nothing).
void register_test_family();
// Writes a model folder of the family at `dir` (native size `size`).
void write_test_family_model(const std::string& dir, int size = 16);

}  // namespace genvis::test
