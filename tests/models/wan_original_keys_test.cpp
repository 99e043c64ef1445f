// The Wan 2.1 key tables against the published conversions (diffusers'
// scripts/convert_wan_to_diffusers.py and single_file_utils for the transformer and VAE; the
// module trees of wan/modules/{t5,clip}.py for the text and image encoders), literal name by
// literal name; every module tensor of each family reachable and round-tripping; configs read off
// the shapes of the real releases (synthetic tensor lists, no data); layout detection; refusals.
#include "core/error.h"
#include "core/torch_compat.h"
#include "io/safetensors.h"
#include "models/autoencoder_kl_wan/wan_vae_original_keys.h"
#include "models/clip_vision/clip_vision_model.h"
#include "models/clip_vision/clip_vision_original_keys.h"
#include "models/detect.h"
#include "models/umt5/umt5_encoder.h"
#include "models/umt5/umt5_original_keys.h"
#include "models/wan/wan_original_keys.h"
#include "models/wan/wan_transformer.h"
#include "nn/state_dict.h"
#include "support/test_support.h"

#include <torch/torch.h>

namespace genvis::models {
namespace {

std::string module_name(const nn::KeyTable& table, const std::string& file) {
  const auto m = table.to_module(file);
  return m && m->size() == 1 ? m->front() : "<" + file + ": no single rename>";
}

// Every parameter of `module` has a file name that maps back to it.
void expect_round_trip(const nn::KeyTable& table, torch::nn::Module& module, const std::string& what) {
  size_t checked = 0;
  for (const auto& [name, tensor] : nn::state_dict(module)) {
    const auto file = table.to_file(name);
    ASSERT_TRUE(file) << what << ": no file name for " << name;
    const auto back = table.to_module(file->name);
    ASSERT_TRUE(back) << what << ": " << file->name << " maps to nothing";
    ASSERT_EQ(back->size(), file->parts) << what << ": " << file->name;
    EXPECT_EQ(back->at(file->part), name) << what << ": " << file->name;
    ++checked;
  }
  EXPECT_GT(checked, 0u) << what;
}

io::TensorInfo info(std::string name, std::vector<int64_t> shape, io::DType dtype = io::DType::BF16) {
  io::TensorInfo t;
  t.name = std::move(name);
  t.shape = std::move(shape);
  t.dtype = dtype;
  return t;
}

TEST(WanOriginalKeys, TransformerAsDiffusersConvertsIt) {
  const auto& t = wan_transformer_original_keys();
  const std::pair<const char*, const char*> pairs[] = {
      {"patch_embedding.weight", "patch_embedding.weight"},
      {"time_embedding.0.weight", "condition_embedder.time_embedder.linear_1.weight"},
      {"time_embedding.2.bias", "condition_embedder.time_embedder.linear_2.bias"},
      {"time_projection.1.weight", "condition_embedder.time_proj.weight"},
      {"text_embedding.0.bias", "condition_embedder.text_embedder.linear_1.bias"},
      {"text_embedding.2.weight", "condition_embedder.text_embedder.linear_2.weight"},
      {"blocks.0.self_attn.q.weight", "blocks.0.attn1.to_q.weight"},
      {"blocks.29.self_attn.o.bias", "blocks.29.attn1.to_out.0.bias"},
      {"blocks.3.self_attn.norm_k.weight", "blocks.3.attn1.norm_k.weight"},
      {"blocks.3.cross_attn.v.weight", "blocks.3.attn2.to_v.weight"},
      {"blocks.3.cross_attn.k_img.weight", "blocks.3.attn2.add_k_proj.weight"},
      {"blocks.3.cross_attn.v_img.bias", "blocks.3.attn2.add_v_proj.bias"},
      {"blocks.3.cross_attn.norm_k_img.weight", "blocks.3.attn2.norm_added_k.weight"},
      {"blocks.3.norm3.weight", "blocks.3.norm2.weight"},
      {"blocks.3.ffn.0.weight", "blocks.3.ffn.net.0.proj.weight"},
      {"blocks.3.ffn.2.bias", "blocks.3.ffn.net.2.bias"},
      {"blocks.3.modulation", "blocks.3.scale_shift_table"},
      {"head.head.weight", "proj_out.weight"},
      {"head.modulation", "scale_shift_table"},
      {"img_emb.proj.0.weight", "condition_embedder.image_embedder.norm1.weight"},
      {"img_emb.proj.1.weight", "condition_embedder.image_embedder.ff.net.0.proj.weight"},
      {"img_emb.proj.3.bias", "condition_embedder.image_embedder.ff.net.2.bias"},
      {"img_emb.proj.4.weight", "condition_embedder.image_embedder.norm2.weight"},
  };
  for (const auto& [file, module] : pairs) EXPECT_EQ(module_name(t, file), module) << file;
  EXPECT_FALSE(t.to_module("blocks.0.attn1.to_q.weight")) << "diffusers names are not original names";

  WanTransformer3DConfig c;
  c.num_attention_heads = 2, c.attention_head_dim = 12, c.text_dim = 8, c.freq_dim = 8, c.ffn_dim = 16;
  c.num_layers = 2;
  WanTransformer3DModel t2v(c);
  expect_round_trip(t, *t2v, "t2v");
  c.in_channels = 36, c.image_dim = 8, c.added_kv_proj_dim = 24;
  WanTransformer3DModel i2v(c);
  expect_round_trip(t, *i2v, "i2v");
}

TEST(WanOriginalKeys, VAEAsDiffusersConvertsTheRelease) {
  const AutoencoderKLWanConfig release;  // Wan2.1_VAE.pth: base 96, dim_mult [1,2,4,4], 2 blocks
  const nn::KeyTable t = wan_vae_original_keys(release);
  const std::pair<const char*, const char*> pairs[] = {
      {"encoder.conv1.weight", "encoder.conv_in.weight"},
      {"decoder.conv1.bias", "decoder.conv_in.bias"},
      {"conv1.weight", "quant_conv.weight"},
      {"conv2.bias", "post_quant_conv.bias"},
      {"encoder.middle.0.residual.0.gamma", "encoder.mid_block.resnets.0.norm1.gamma"},
      {"encoder.middle.2.residual.6.weight", "encoder.mid_block.resnets.1.conv2.weight"},
      {"decoder.middle.1.to_qkv.weight", "decoder.mid_block.attentions.0.to_qkv.weight"},
      {"decoder.middle.1.norm.gamma", "decoder.mid_block.attentions.0.norm.gamma"},
      {"encoder.head.0.gamma", "encoder.norm_out.gamma"},
      {"decoder.head.2.bias", "decoder.conv_out.bias"},
      {"encoder.downsamples.3.residual.3.gamma", "encoder.down_blocks.3.norm2.gamma"},
      {"encoder.downsamples.3.shortcut.weight", "encoder.down_blocks.3.conv_shortcut.weight"},
      {"encoder.downsamples.2.resample.1.weight", "encoder.down_blocks.2.resample.1.weight"},
      {"encoder.downsamples.5.time_conv.weight", "encoder.down_blocks.5.time_conv.weight"},
      {"decoder.upsamples.0.residual.0.gamma", "decoder.up_blocks.0.resnets.0.norm1.gamma"},
      {"decoder.upsamples.2.residual.2.weight", "decoder.up_blocks.0.resnets.2.conv1.weight"},
      {"decoder.upsamples.3.resample.1.weight", "decoder.up_blocks.0.upsamplers.0.resample.1.weight"},
      {"decoder.upsamples.3.time_conv.bias", "decoder.up_blocks.0.upsamplers.0.time_conv.bias"},
      {"decoder.upsamples.4.shortcut.weight", "decoder.up_blocks.1.resnets.0.conv_shortcut.weight"},
      {"decoder.upsamples.6.residual.6.bias", "decoder.up_blocks.1.resnets.2.conv2.bias"},
      {"decoder.upsamples.7.resample.1.bias", "decoder.up_blocks.1.upsamplers.0.resample.1.bias"},
      {"decoder.upsamples.12.residual.0.gamma", "decoder.up_blocks.3.resnets.0.norm1.gamma"},
      {"decoder.upsamples.11.resample.1.weight", "decoder.up_blocks.2.upsamplers.0.resample.1.weight"},
      {"decoder.upsamples.14.residual.3.gamma", "decoder.up_blocks.3.resnets.2.norm2.gamma"},
  };
  for (const auto& [file, module] : pairs) EXPECT_EQ(module_name(t, file), module) << file;
  EXPECT_FALSE(t.to_module("decoder.upsamples.15.resample.1.weight")) << "the last level has no upsampler";

  AutoencoderKLWanConfig small = release;
  small.base_dim = 4;
  AutoencoderKLWan vae(small);
  expect_round_trip(t, *vae, "release-shaped VAE");
  small.num_res_blocks = 1, small.dim_mult = {1, 2, 2};
  small.temperal_downsample = {true, false};
  AutoencoderKLWan other(small);
  expect_round_trip(wan_vae_original_keys(small), *other, "1 block per level, 3 levels");
}

TEST(WanOriginalKeys, UMT5FromTheReleasesT5Encoder) {
  const auto& t = umt5_original_keys();
  const std::pair<const char*, const char*> pairs[] = {
      {"token_embedding.weight", "shared.weight"},
      {"blocks.0.norm1.weight", "encoder.block.0.layer.0.layer_norm.weight"},
      {"blocks.23.attn.q.weight", "encoder.block.23.layer.0.SelfAttention.q.weight"},
      {"blocks.1.attn.o.weight", "encoder.block.1.layer.0.SelfAttention.o.weight"},
      {"blocks.1.pos_embedding.embedding.weight", "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"},
      {"blocks.1.norm2.weight", "encoder.block.1.layer.1.layer_norm.weight"},
      {"blocks.1.ffn.gate.0.weight", "encoder.block.1.layer.1.DenseReluDense.wi_0.weight"},
      {"blocks.1.ffn.fc1.weight", "encoder.block.1.layer.1.DenseReluDense.wi_1.weight"},
      {"blocks.1.ffn.fc2.weight", "encoder.block.1.layer.1.DenseReluDense.wo.weight"},
      {"norm.weight", "encoder.final_layer_norm.weight"},
  };
  for (const auto& [file, module] : pairs) EXPECT_EQ(module_name(t, file), module) << file;
  UMT5Config c;
  c.vocab_size = 16, c.d_model = 8, c.d_kv = 4, c.d_ff = 8, c.num_layers = 2, c.num_heads = 2;
  UMT5EncoderModel te(c);
  expect_round_trip(t, *te, "umt5");
}

TEST(WanOriginalKeys, CLIPVisionFromTheReleasesOpenCLIP) {
  const auto& t = clip_vision_wan_original_keys();
  const std::pair<const char*, const char*> pairs[] = {
      {"visual.patch_embedding.weight", "vision_model.embeddings.patch_embedding.weight"},
      {"visual.cls_embedding", "vision_model.embeddings.class_embedding"},
      {"visual.pos_embedding", "vision_model.embeddings.position_embedding.weight"},
      {"visual.pre_norm.weight", "vision_model.pre_layrnorm.weight"},
      {"visual.post_norm.bias", "vision_model.post_layernorm.bias"},
      {"visual.transformer.31.norm1.weight", "vision_model.encoder.layers.31.layer_norm1.weight"},
      {"visual.transformer.0.attn.proj.weight", "vision_model.encoder.layers.0.self_attn.out_proj.weight"},
      {"visual.transformer.0.mlp.0.bias", "vision_model.encoder.layers.0.mlp.fc1.bias"},
      {"visual.transformer.0.mlp.2.weight", "vision_model.encoder.layers.0.mlp.fc2.weight"},
  };
  for (const auto& [file, module] : pairs) EXPECT_EQ(module_name(t, file), module) << file;
  EXPECT_EQ(*t.to_module("visual.transformer.4.attn.to_qkv.weight"),
            (std::vector<std::string>{"vision_model.encoder.layers.4.self_attn.q_proj.weight",
                                      "vision_model.encoder.layers.4.self_attn.k_proj.weight",
                                      "vision_model.encoder.layers.4.self_attn.v_proj.weight"}));
  for (const char* skipped : {"visual.head", "textual.blocks.0.attn.q.weight", "log_scale"})
    EXPECT_EQ(*t.to_module(skipped), std::vector<std::string>{""}) << skipped;
  CLIPVisionConfig c;
  c.hidden_size = 8, c.intermediate_size = 16, c.num_hidden_layers = 2, c.num_attention_heads = 2;
  c.image_size = 8, c.patch_size = 4;
  CLIPVisionModel vision(c);
  expect_round_trip(t, *vision, "clip vision");
}

// The shapes of the released transformers (Wan2.1-T2V-1.3B; I2V-14B under ComfyUI's prefix).
std::vector<io::TensorInfo> release_transformer(int64_t dim, int64_t in, int64_t ffn, int64_t layers, bool i2v,
                                                const std::string& p = "") {
  std::vector<io::TensorInfo> t = {info(p + "patch_embedding.weight", {dim, in, 1, 2, 2}),
                                   info(p + "text_embedding.0.weight", {dim, 4096}),
                                   info(p + "time_embedding.0.weight", {dim, 256}),
                                   info(p + "head.head.weight", {64, dim}),
                                   info(p + "head.modulation", {1, 2, dim})};
  for (int64_t i = 0; i < layers; ++i) {
    const std::string b = p + "blocks." + std::to_string(i) + ".";
    t.push_back(info(b + "self_attn.q.weight", {dim, dim}));
    t.push_back(info(b + "ffn.0.weight", {ffn, dim}));
    t.push_back(info(b + "norm3.weight", {dim}));
    t.push_back(info(b + "modulation", {1, 6, dim}));
  }
  if (i2v) t.push_back(info(p + "img_emb.proj.1.weight", {1280, 1280}));
  return t;
}

TEST(WanOriginalKeys, TransformerConfigFromTheReleasesShapes) {
  const auto t2v = release_transformer(1536, 16, 8960, 30, false);
  ASSERT_EQ(wan_original_prefix(t2v), std::optional<std::string>(""));
  auto c = WanTransformer3DConfig::from_json(infer_wan_transformer_config(t2v, "", {}, "t2v"));
  EXPECT_EQ(c.num_attention_heads, 12);
  EXPECT_EQ(c.attention_head_dim, 128);
  EXPECT_EQ(c.num_layers, 30);
  EXPECT_EQ(c.ffn_dim, 8960);
  EXPECT_EQ(c.text_dim, 4096);
  EXPECT_EQ(c.freq_dim, 256);
  EXPECT_EQ(c.in_channels, 16);
  EXPECT_EQ(c.out_channels, 16);
  EXPECT_EQ(c.patch_size, (std::vector<int64_t>{1, 2, 2}));
  EXPECT_TRUE(c.cross_attn_norm);
  EXPECT_FALSE(c.is_i2v());

  const auto i2v = release_transformer(5120, 36, 13824, 40, true, kComfyUIDiffusionPrefix);
  ASSERT_EQ(wan_original_prefix(i2v), std::optional<std::string>("model.diffusion_model."));
  c = WanTransformer3DConfig::from_json(infer_wan_transformer_config(i2v, kComfyUIDiffusionPrefix, {}, "i2v"));
  EXPECT_EQ(c.num_attention_heads, 40);
  EXPECT_EQ(c.in_channels, 36);
  EXPECT_EQ(c.image_dim, 1280);
  EXPECT_EQ(c.added_kv_proj_dim, 5120);

  // Overrides: a head count sets the head size from the hidden size.
  c = WanTransformer3DConfig::from_json(infer_wan_transformer_config(t2v, "", {{"num_attention_heads", 24}}, "t2v"));
  EXPECT_EQ(c.attention_head_dim, 64);
  // A hidden size that is no multiple of 128 needs the head count, and says how to give it.
  const auto odd = release_transformer(24, 16, 48, 2, false);
  test::expect_contains(test::load_error([&] { infer_wan_transformer_config(odd, "", {}, "odd.safetensors"); }),
                        {"odd.safetensors", "hidden size 24", "num_attention_heads"});
  EXPECT_EQ(WanTransformer3DConfig::from_json(
                infer_wan_transformer_config(odd, "", {{"num_attention_heads", 2}}, "odd"))
                .attention_head_dim,
            12);
  // Missing sizes and unsupported kinds are named.
  auto flf = t2v;
  flf.push_back(info("img_emb.emb_pos", {1, 514, 1280}));
  test::expect_contains(test::load_error([&] { infer_wan_transformer_config(flf, "", {}, "flf.safetensors"); }),
                        {"flf.safetensors", "'img_emb.emb_pos'", "FLF2V"});
  auto headless = t2v;
  headless.erase(headless.begin() + 3);
  test::expect_contains(test::load_error([&] { infer_wan_transformer_config(headless, "", {}, "h.safetensors"); }),
                        {"h.safetensors", "'head.head.weight'", "missing"});
}

TEST(WanOriginalKeys, ReleaseConfigJson) {
  const nlohmann::json release = {{"_class_name", "WanModel"}, {"_diffusers_version", "0.30.0"}, {"dim", 1536},
                                  {"eps", 1e-06}, {"ffn_dim", 8960}, {"freq_dim", 256}, {"in_dim", 16},
                                  {"model_type", "t2v"}, {"num_heads", 12}, {"num_layers", 30}, {"out_dim", 16},
                                  {"text_len", 512}};
  const WanModelConfig c = WanModelConfig::from_json(release, "config.json");
  EXPECT_EQ(c.model_type, "t2v");
  EXPECT_EQ(c.text_len, 512);
  EXPECT_EQ(c.transformer.at("num_attention_heads"), 12);
  EXPECT_EQ(c.transformer.at("in_channels"), 16);
  EXPECT_EQ(c.transformer.at("ffn_dim"), 8960);
  // Its head count wins over the 128-wide default.
  const auto shapes = release_transformer(1536, 16, 8960, 30, false);
  EXPECT_EQ(WanTransformer3DConfig::from_json(infer_wan_transformer_config(shapes, "", c.transformer, "x"))
                .attention_head_dim,
            128);
  nlohmann::json bad = release;
  bad["model_type"] = "flf2v";
  bad["window_size"] = {256, 256};
  bad["colour"] = 1;
  test::expect_contains(test::load_error([&] { WanModelConfig::from_json(bad, "config.json"); }),
                        {"config.json", "3 problem(s)", "flf2v", "window_size", "unknown key colour"});
}

TEST(WanOriginalKeys, EncoderConfigsFromShapes) {
  // models_t5_umt5-xxl-enc-bf16.pth: google/umt5-xxl's encoder.
  std::vector<io::TensorInfo> t5 = {info("token_embedding.weight", {256384, 4096}), info("norm.weight", {4096})};
  for (int i = 0; i < 24; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    t5.push_back(info(b + "attn.q.weight", {4096, 4096}));
    t5.push_back(info(b + "pos_embedding.embedding.weight", {32, 64}));
    t5.push_back(info(b + "ffn.gate.0.weight", {10240, 4096}));
  }
  ASSERT_TRUE(is_umt5_original(t5));
  const UMT5Config u = UMT5Config::from_json(infer_umt5_config(t5, true, "", {}, "t5.pth"));
  EXPECT_EQ(u.vocab_size, 256384);
  EXPECT_EQ(u.d_model, 4096);
  EXPECT_EQ(u.num_heads, 64);
  EXPECT_EQ(u.d_kv, 64);
  EXPECT_EQ(u.d_ff, 10240);
  EXPECT_EQ(u.num_layers, 24);
  EXPECT_EQ(u.relative_attention_num_buckets, 32);

  // ComfyUI's clip_vision_h.safetensors: open-clip ViT-H/14 in transformers names.
  std::vector<io::TensorInfo> clip = {info("vision_model.embeddings.patch_embedding.weight", {1280, 3, 14, 14}),
                                      info("vision_model.embeddings.position_embedding.weight", {257, 1280}),
                                      info("visual_projection.weight", {1024, 1280})};
  for (int i = 0; i < 32; ++i) {
    const std::string l = "vision_model.encoder.layers." + std::to_string(i) + ".";
    clip.push_back(info(l + "layer_norm1.weight", {1280}));
    clip.push_back(info(l + "mlp.fc1.weight", {5120, 1280}));
  }
  ASSERT_TRUE(is_clip_vision_transformers(clip));
  const CLIPVisionConfig v = CLIPVisionConfig::from_json(infer_clip_vision_config(clip, false, {}, "clip.safetensors"));
  EXPECT_EQ(v.hidden_size, 1280);
  EXPECT_EQ(v.num_attention_heads, 16);
  EXPECT_EQ(v.image_size, 224);
  EXPECT_EQ(v.patch_size, 14);
  EXPECT_EQ(v.intermediate_size, 5120);
  EXPECT_EQ(v.num_hidden_layers, 32);
  EXPECT_EQ(v.projection_dim, 1024);
  EXPECT_EQ(v.hidden_act, "gelu");
}

TEST(WanOriginalKeys, DetectsEveryPublishedLayout) {
  const auto t2v = release_transformer(1536, 16, 8960, 2, false);
  LayoutGuess g = detect_layout(t2v, {}, "safetensors");
  EXPECT_EQ(g.layout, "wan-original-transformer");
  EXPECT_EQ(g.family, "wan2.1");
  EXPECT_EQ(g.pipeline, "WanPipeline");
  g = detect_layout(release_transformer(5120, 36, 13824, 2, true, kComfyUIDiffusionPrefix), {}, "safetensors");
  EXPECT_EQ(g.layout, "comfyui-wan-transformer");
  EXPECT_EQ(g.pipeline, "WanImageToVideoPipeline");

  const std::vector<io::TensorInfo> vae = {info("encoder.conv1.weight", {96, 3, 3, 3, 3}), info("conv2.weight", {16, 16, 1, 1, 1}),
                                           info("decoder.upsamples.0.residual.0.gamma", {384, 1, 1, 1})};
  EXPECT_EQ(detect_layout(vae, {}, "pytorch-zip").layout, "wan-original-vae");
  EXPECT_EQ(detect_layout(vae, {}, "safetensors").layout, "comfyui-wan-vae");
  EXPECT_EQ(detect_layout(vae, {}, "safetensors").class_name, "AutoencoderKLWan");

  const std::vector<io::TensorInfo> t5 = {info("token_embedding.weight", {256384, 4096}),
                                          info("blocks.0.attn.q.weight", {4096, 4096}),
                                          info("blocks.0.pos_embedding.embedding.weight", {32, 64})};
  EXPECT_EQ(detect_layout(t5, {}, "pytorch-zip").layout, "wan-original-umt5");
  const std::vector<io::TensorInfo> hf_t5 = {
      info("shared.weight", {256384, 4096}), info("encoder.final_layer_norm.weight", {4096}),
      info("encoder.block.0.layer.0.SelfAttention.q.weight", {4096, 4096}),
      info("encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight", {32, 64})};
  g = detect_layout(hf_t5, {}, "safetensors");
  EXPECT_EQ(g.layout, "transformers-umt5");
  EXPECT_EQ(g.class_name, "UMT5EncoderModel");

  EXPECT_EQ(detect_layout({info("visual.transformer.0.attn.to_qkv.weight", {3840, 1280})}, {}, "pytorch-zip").layout,
            "wan-original-clip-vision");
  EXPECT_EQ(detect_layout({info("vision_model.embeddings.patch_embedding.weight", {1280, 3, 14, 14}),
                           info("visual_projection.weight", {1024, 1280})},
                          {}, "safetensors")
                .class_name,
            "CLIPVisionModelWithProjection");

  // ComfyUI's scaled float8 files are recognised and flagged.
  auto scaled = t2v;
  for (auto& t : scaled) t.dtype = io::DType::F8_E4M3;
  scaled.push_back(info("scaled_fp8", {0}, io::DType::F8_E4M3));
  scaled.push_back(info("blocks.0.self_attn.q.scale_weight", {1}, io::DType::F32));
  g = detect_layout(scaled, {}, "safetensors");
  EXPECT_EQ(g.layout, "wan-original-transformer");
  ASSERT_FALSE(g.details.empty());
  EXPECT_NE(g.details.back().find("ComfyUI *_scaled"), std::string::npos) << g.details.back();
}

struct OneImpl : torch::nn::Module {
  OneImpl() { w = register_parameter("w", torch::zeros({2})); }
  at::Tensor w;
};
TORCH_MODULE(One);

// Float8 weights: scaled ones are refused by name; plain ones load only where libtorch has float8.
TEST(WanOriginalKeys, Float8FilesGetOneClearError) {
  test::TempDir dir;
  io::save_safetensors(dir.file("scaled.safetensors"), {{"w", torch::zeros({2})}, {"w.scale_weight", torch::ones({1})}});
  One m;
  auto reader = io::open_weights(dir.file("scaled.safetensors"));
  test::expect_contains(test::load_error([&] { nn::load_state_dict(*m, *reader); }),
                        {"scaled.safetensors", "'w.scale_weight'", "scaled float8", "fp16"});
  // A hand-written safetensors file of one F8_E4M3 tensor [2].
  const std::string header = R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})";
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  test::write_bytes(dir.file("f8.safetensors"), bytes + header + std::string("\x38\x40", 2));
  reader = io::open_weights(dir.file("f8.safetensors"));
  if (compat::float8_e4m3fn()) {
    nn::load_state_dict(*m, *reader, {.dtype = at::kFloat});
    EXPECT_FLOAT_EQ(m->w[0].item<float>(), 1.f);  // 0x38 = 1.0 in e4m3
  } else {
    test::expect_contains(test::load_error([&] { nn::load_state_dict(*m, *reader, {.dtype = at::kFloat}); }),
                          {"f8.safetensors", "'w'", "float8", "fp16"});
  }
}

}  // namespace
}  // namespace genvis::models
