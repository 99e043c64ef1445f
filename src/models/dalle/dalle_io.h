// DALL·E's folders: dvae/ and transformer/, each config.json + model.safetensors (f32).
//
//   save_dvae(vae, "runs/dalle/model/dvae");
//   DiscreteVAE vae = load_dvae("runs/dalle/model/dvae", torch::kCPU, torch::kFloat);
//
// Loading is strict: every tensor present with its shape, nothing extra (LoadError naming the
// file and the key otherwise).
#pragma once
#include "models/dalle/dalle_transformer.h"
#include "models/dalle/dvae.h"

#include <string>
#include <torch/types.h>

namespace genvis::models {

void save_dvae(DiscreteVAE& vae, const std::string& folder);
DiscreteVAE load_dvae(const std::string& folder, const at::Device& device = at::kCPU, at::ScalarType dtype = at::kFloat);

void save_dalle_transformer(DalleTransformer& model, const std::string& folder);
DalleTransformer load_dalle_transformer(const std::string& folder, const at::Device& device = at::kCPU,
                                        at::ScalarType dtype = at::kFloat);

}  // namespace genvis::models
