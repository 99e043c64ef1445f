// CLIP text encoders with the transformers key names (text_model.*, text_projection).
//
//   CLIPTextModel te(config);                       // SD1 CLIP-L, SD2 OpenCLIP-H, SDXL CLIP-L
//   CLIPTextOutput out = te->forward(input_ids);    // input_ids: int64 [B, 77]
//   CLIPTextModelWithProjection te2(config_g);      // SDXL OpenCLIP bigG: out.text_embeds [B, P]
//
// Pre-LN transformer with a causal mask; the activation is quick_gelu or exact gelu per config.
#pragma once
#include "models/clip_text/clip_text_config.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <vector>

namespace genvis::models {

struct CLIPTextOutput {
  at::Tensor last_hidden_state;            // [B, S, C], after final_layer_norm
  std::vector<at::Tensor> hidden_states;   // L+1 x [B, S, C]: embeddings, then each layer (no final LN)
  at::Tensor pooler_output;                // [B, C], last_hidden_state at the EOS position
  at::Tensor text_embeds;                  // [B, P], text_projection(pooler_output); undefined without projection
};

struct CLIPAttentionImpl : torch::nn::Module {
  explicit CLIPAttentionImpl(const CLIPTextConfig& config);
  // x: [B, S, C]; mask: additive [S, S] (causal), or undefined (none: the vision tower).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask);

  int64_t num_heads, head_dim;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(CLIPAttention);

struct CLIPMLPImpl : torch::nn::Module {
  explicit CLIPMLPImpl(const CLIPTextConfig& config);
  at::Tensor forward(const at::Tensor& x);

  bool quick_gelu;
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(CLIPMLP);

struct CLIPEncoderLayerImpl : torch::nn::Module {
  explicit CLIPEncoderLayerImpl(const CLIPTextConfig& config);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask);

  CLIPAttention self_attn{nullptr};
  torch::nn::LayerNorm layer_norm1{nullptr};
  CLIPMLP mlp{nullptr};
  torch::nn::LayerNorm layer_norm2{nullptr};
};
TORCH_MODULE(CLIPEncoderLayer);

struct CLIPTextEmbeddingsImpl : torch::nn::Module {
  explicit CLIPTextEmbeddingsImpl(const CLIPTextConfig& config);
  at::Tensor forward(const at::Tensor& input_ids);  // [B, S] -> [B, S, C]
  // The token part alone: [B, S] -> [B, S, C] (textual-inversion vectors spliced in).
  at::Tensor token_embeddings(const at::Tensor& input_ids);

  torch::nn::Embedding token_embedding{nullptr}, position_embedding{nullptr};
  // Added token vectors [M, C] (textual inversion): id vocab_size + j reads row j. Not a
  // registered parameter, so it is neither saved with nor loaded into the model; a trainer may
  // set a tensor that requires grad here.
  at::Tensor extra_token_embeddings;
};
TORCH_MODULE(CLIPTextEmbeddings);

struct CLIPEncoderImpl : torch::nn::Module {
  explicit CLIPEncoderImpl(const CLIPTextConfig& config);
  torch::nn::ModuleList layers{nullptr};  // of CLIPEncoderLayer
};
TORCH_MODULE(CLIPEncoder);

// transformers' CLIPTextTransformer: the `text_model.` subtree.
struct CLIPTextTransformerImpl : torch::nn::Module {
  explicit CLIPTextTransformerImpl(const CLIPTextConfig& config);
  // Fills everything but text_embeds.
  CLIPTextOutput forward(const at::Tensor& input_ids);
  // [B] index of the pooled token per sequence (see CLIPTextConfig::eos_token_id).
  at::Tensor eos_positions(const at::Tensor& input_ids) const;

  CLIPTextConfig config;
  CLIPTextEmbeddings embeddings{nullptr};
  CLIPEncoder encoder{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(CLIPTextTransformer);

struct CLIPTextModelImpl : torch::nn::Module {
  explicit CLIPTextModelImpl(const CLIPTextConfig& config);
  CLIPTextOutput forward(const at::Tensor& input_ids);

  CLIPTextTransformer text_model{nullptr};
};
TORCH_MODULE(CLIPTextModel);

struct CLIPTextModelWithProjectionImpl : torch::nn::Module {
  explicit CLIPTextModelWithProjectionImpl(const CLIPTextConfig& config);
  CLIPTextOutput forward(const at::Tensor& input_ids);

  CLIPTextTransformer text_model{nullptr};
  torch::nn::Linear text_projection{nullptr};  // [P, C], no bias
};
TORCH_MODULE(CLIPTextModelWithProjection);

}  // namespace genvis::models

namespace genvis::models {

// Prompt conditioning as diffusers' encode_prompt builds it from token ids.

// SD1 / SD2 (StableDiffusionPipeline): last_hidden_state [B, S, C]; with clip_skip k > 0,
// final_layer_norm(hidden_states[-(k+1)]) (diffusers clip_skip=1 is A1111 "CLIP skip 2").
at::Tensor sd_prompt_embeds(CLIPTextTransformerImpl& text_model, const at::Tensor& input_ids, int clip_skip = 0);
at::Tensor sd_prompt_embeds(CLIPTextModel& text_encoder, const at::Tensor& input_ids, int clip_skip = 0);

struct SDXLPromptEmbeds {
  at::Tensor prompt_embeds;         // [B, S, C1 + C2] = [L hidden_states[-(k+2)] | G hidden_states[-(k+2)]], no final LN
  at::Tensor pooled_prompt_embeds;  // [B, P] = G's text_embeds
};

// SDXL: text_encoder (CLIP-L, tokenizer pads with 49407) gets input_ids, text_encoder_2
// (OpenCLIP bigG with projection, tokenizer_2 pads with 0) gets input_ids_2.
SDXLPromptEmbeds sdxl_prompt_embeds(CLIPTextModel& text_encoder, CLIPTextModelWithProjection& text_encoder_2,
                                    const at::Tensor& input_ids, const at::Tensor& input_ids_2, int clip_skip = 0);

}  // namespace genvis::models
