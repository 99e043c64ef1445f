// The tiny SD 1.x model assembled from the fixture components (clip_l + unet_sd1 + vae), as the
// pipeline tests load it.
#pragma once
#include "pipelines/stable_diffusion.h"
#include "support/test_support.h"

namespace genvis::test {

inline pipelines::ModelSource tiny_sd1_source() {
  pipelines::ModelSource source;
  const std::string f = fixtures_dir();
  source.text_encoder = f + "/clip_l";
  source.unet = f + "/unet_sd1";
  source.vae = f + "/vae";
  source.vocab = clip_vocab();
  return source;
}

inline pipelines::StableDiffusion tiny_sd1_model() { return pipelines::load_stable_diffusion(tiny_sd1_source()); }

}  // namespace genvis::test
