// UNet2DConditionModel for SD 1.x / 2.x / XL (and 9-channel inpainting), diffusers 0.31 numerics.
//
//   auto unet = genvis::models::load_unet2d_condition("sd/unet");
//   at::Tensor eps = unet->forward(latents /*[B,4,h,w]*/, timestep /*[B] or scalar*/, context /*[B,77,D]*/);
//   // SDXL: unet->forward(latents, t, context, UNetAddedConditions{text_embeds /*[B,P]*/, time_ids /*[B,6]*/});
#pragma once
#include "models/unet2d_condition/unet_blocks.h"
#include "nn/embeddings.h"

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace genvis::models {

// Field names equal config.json keys. Per-block fields accept an int (same for every block) or
// a list (one per down block; up blocks use them reversed, the mid block the last entry).
struct UNet2DConditionConfig {
  std::optional<int64_t> sample_size;
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  bool center_input_sample = false;
  bool flip_sin_to_cos = true;
  double freq_shift = 0;
  std::vector<std::string> down_block_types = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                               "DownBlock2D"};
  std::optional<std::string> mid_block_type = "UNetMidBlock2DCrossAttn";
  std::vector<std::string> up_block_types = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                             "CrossAttnUpBlock2D"};
  bool only_cross_attention = false;
  std::vector<int64_t> block_out_channels = {320, 640, 1280, 1280};
  std::vector<int64_t> layers_per_block = {2};
  int64_t downsample_padding = 1;
  double mid_block_scale_factor = 1;
  double dropout = 0;
  std::string act_fn = "silu";
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  std::vector<int64_t> cross_attention_dim = {1280};
  std::vector<int64_t> transformer_layers_per_block = {1};
  bool has_reverse_transformer_layers_per_block = false;  // "reverse_transformer_layers_per_block" != null
  std::optional<int64_t> encoder_hid_dim;
  std::optional<std::string> encoder_hid_dim_type;
  std::vector<int64_t> attention_head_dim = {8};   // NUMBER OF HEADS (legacy diffusers naming)
  std::vector<int64_t> num_attention_heads;         // empty (null): attention_head_dim is used
  bool dual_cross_attention = false;
  bool use_linear_projection = false;
  std::optional<std::string> class_embed_type;
  std::optional<std::string> addition_embed_type;  // null or "text_time" (SDXL)
  std::optional<int64_t> addition_time_embed_dim;
  std::optional<int64_t> num_class_embeds;
  bool upcast_attention = false;
  std::string resnet_time_scale_shift = "default";
  bool resnet_skip_time_act = false;
  double resnet_out_scale_factor = 1.0;
  std::string time_embedding_type = "positional";
  std::optional<int64_t> time_embedding_dim;
  std::optional<std::string> time_embedding_act_fn;
  std::optional<std::string> timestep_post_act;
  std::optional<int64_t> time_cond_proj_dim;
  int64_t conv_in_kernel = 3;
  int64_t conv_out_kernel = 3;
  std::optional<int64_t> projection_class_embeddings_input_dim;
  std::string attention_type = "default";
  bool class_embeddings_concat = false;
  std::optional<bool> mid_block_only_cross_attention;
  std::optional<std::string> cross_attention_norm;

  // Every problem at once: problems() lists them, validate() throws them as one UsageError.
  std::vector<std::string> problems() const;
  void validate() const;
  // Parses a diffusers config.json object (null = default; unknown keys, wrong types and
  // unsupported values all reported at once) and validates; throws LoadError naming `source`.
  static UNet2DConditionConfig from_json(const nlohmann::json& j, const std::string& source = "");
  static UNet2DConditionConfig from_file(const std::string& path);

  // Per-block values resolved to one entry per down block.
  size_t num_blocks() const { return block_out_channels.size(); }
  std::vector<int64_t> heads_per_block() const;
  std::vector<int64_t> layers_per_block_list() const;
  std::vector<int64_t> cross_attention_dim_list() const;
  std::vector<int64_t> transformer_layers_list() const;
  int64_t time_embed_dim() const { return time_embedding_dim.value_or(block_out_channels.at(0) * 4); }
};

// DeepCache (Ma, Fang and Wang, 2023): adjacent sampling steps change the deep features of a
// UNet little. A refreshing pass runs the whole network and keeps the input of the last up block;
// a cached pass runs only conv_in, the first down block and the last up block on that kept input
// (the rest of the network is skipped). With the same inputs both passes give the same output.
struct UNetDeepCache {
  at::Tensor deep;                // the last up block's input at the last refresh
  int64_t full = 0, shallow = 0;  // passes of each kind so far
};

// SDXL added conditioning (addition_embed_type "text_time").
struct UNetAddedConditions {
  at::Tensor text_embeds;  // [B,projection_dim]
  at::Tensor time_ids;     // [B,6]: orig_h, orig_w, crop_top, crop_left, target_h, target_w
};

class UNet2DConditionModelImpl : public torch::nn::Module {
public:
  explicit UNet2DConditionModelImpl(const UNet2DConditionConfig& config);

  // sample [B,in,h,w]; timestep [B] or a scalar (broadcast), int or fractional;
  // encoder_hidden_states [B,T,cross_attention_dim] -> [B,out,h,w].
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& timestep, const at::Tensor& encoder_hidden_states,
                     const std::optional<UNetAddedConditions>& added_cond = std::nullopt);
  // The same through a DeepCache: `refresh` (or an empty cache, or one of another shape) runs the
  // whole network and refills the cache; otherwise the shallow pass on the cached features.
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& timestep, const at::Tensor& encoder_hidden_states,
                     const std::optional<UNetAddedConditions>& added_cond, UNetDeepCache& cache, bool refresh);

  UNet2DConditionConfig config;
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  nn::TimestepEmbedding time_embedding{nullptr}, add_embedding{nullptr};
  torch::nn::ModuleList down_blocks, up_blocks;
  std::vector<UNetDownBlock> down_list;
  std::vector<UNetUpBlock> up_list;
  UNetMidBlock mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};

private:
  at::Tensor run(const at::Tensor& sample, const at::Tensor& timestep, const at::Tensor& encoder_hidden_states,
                 const std::optional<UNetAddedConditions>& added_cond, UNetDeepCache* cache, bool refresh);
};
TORCH_MODULE(UNet2DConditionModel);

// A diffusers component folder: config.json + diffusion_pytorch_model.safetensors (or .bin).
UNet2DConditionModel load_unet2d_condition(const std::string& folder, at::ScalarType dtype = at::kFloat);
// The model.diffusion_model.* tensors of an original single-file SD checkpoint, for a given config
// (`prefix` "": a UNet alone in the original names, as ComfyUI stores them).
UNet2DConditionModel load_unet2d_condition_single_file(const std::string& path, const UNet2DConditionConfig& config,
                                                       at::ScalarType dtype = at::kFloat,
                                                       const std::string& prefix = "model.diffusion_model.");

}  // namespace genvis::models
