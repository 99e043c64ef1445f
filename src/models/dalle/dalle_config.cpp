#include "models/dalle/dalle_config.h"

#include "core/config_reader.h"
#include "core/error.h"

namespace genvis::models {
namespace {

using json = nlohmann::json;

void in_range(std::vector<std::string>& problems, const char* name, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi)
    problems.push_back(std::string(name) + " must be in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
                       std::to_string(v));
}

}  // namespace

std::vector<std::string> DVAEConfig::validate() const {
  std::vector<std::string> problems;
  in_range(problems, "in_channels", in_channels, 1, 4);
  in_range(problems, "hidden_size", hidden_size, 1, 1024);
  in_range(problems, "num_groups", num_groups, 1, 6);
  in_range(problems, "blocks_per_group", blocks_per_group, 1, 8);
  in_range(problems, "vocab_size", vocab_size, 2, 65536);
  in_range(problems, "embedding_dim", embedding_dim, 1, 4096);
  in_range(problems, "image_size", image_size, 8, 1024);
  if (num_groups >= 1 && num_groups <= 6 && image_size % downsample() != 0)
    problems.push_back("image_size " + std::to_string(image_size) + " is not a multiple of the downsampling factor " +
                       std::to_string(downsample()));
  return problems;
}

DVAEConfig DVAEConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw LoadError(source, "dVAE config must be a JSON object");
  DVAEConfig c;
  std::vector<std::string> problems;
  config::check_keys(j, "", {},
                     {"model_type", "image_size", "in_channels", "hidden_size", "num_groups", "blocks_per_group",
                      "vocab_size", "embedding_dim"},
                     problems);
  config::read(j, "", "image_size", c.image_size, problems);
  config::read(j, "", "in_channels", c.in_channels, problems);
  config::read(j, "", "hidden_size", c.hidden_size, problems);
  config::read(j, "", "num_groups", c.num_groups, problems);
  config::read(j, "", "blocks_per_group", c.blocks_per_group, problems);
  config::read(j, "", "vocab_size", c.vocab_size, problems);
  config::read(j, "", "embedding_dim", c.embedding_dim, problems);
  for (auto& p : c.validate()) problems.push_back(std::move(p));
  if (!problems.empty()) throw LoadError(source, "invalid dVAE config: " + config::describe(problems));
  return c;
}

DVAEConfig DVAEConfig::from_file(const std::string& path) {
  return from_json(config::read_file(path, config::kMaxModelConfigBytes), path);
}

json DVAEConfig::to_json() const {
  return {{"model_type", "genvis_dvae"},   {"image_size", image_size},
          {"in_channels", in_channels},    {"hidden_size", hidden_size},
          {"num_groups", num_groups},      {"blocks_per_group", blocks_per_group},
          {"vocab_size", vocab_size},      {"embedding_dim", embedding_dim}};
}

DalleAttention parse_dalle_attention(const std::string& name) {
  if (name == "full") return DalleAttention::Full;
  if (name == "row") return DalleAttention::Row;
  if (name == "column") return DalleAttention::Column;
  if (name == "conv") return DalleAttention::Conv;
  throw UsageError("unknown DALL·E attention '" + name + "' (full, row, column, conv)");
}

const char* dalle_attention_name(DalleAttention kind) {
  switch (kind) {
    case DalleAttention::Full: return "full";
    case DalleAttention::Row: return "row";
    case DalleAttention::Column: return "column";
    case DalleAttention::Conv: return "conv";
  }
  return "?";
}

DalleAttention DalleConfig::layer_attention(int64_t layer) const {
  if (!attention.empty()) return parse_dalle_attention(attention.at(static_cast<size_t>(layer)));
  if (layer == num_layers - 1) return DalleAttention::Conv;
  return (layer - 2) % 4 == 0 ? DalleAttention::Column : DalleAttention::Row;
}

std::vector<std::string> DalleConfig::validate() const {
  std::vector<std::string> problems;
  in_range(problems, "text_vocab_size", text_vocab_size, 1, 1 << 20);
  in_range(problems, "text_len", text_len, 1, 4096);
  in_range(problems, "image_vocab_size", image_vocab_size, 2, 65536);
  in_range(problems, "image_rows", image_rows, 1, 256);
  in_range(problems, "image_cols", image_cols, 1, 256);
  in_range(problems, "num_layers", num_layers, 1, 256);
  in_range(problems, "num_heads", num_heads, 1, 256);
  in_range(problems, "hidden_size", hidden_size, 1, 16384);
  in_range(problems, "mlp_ratio", mlp_ratio, 1, 16);
  in_range(problems, "conv_kernel", conv_kernel, 1, 63);
  if (conv_kernel % 2 == 0) problems.push_back("conv_kernel must be odd, got " + std::to_string(conv_kernel));
  if (num_heads >= 1 && hidden_size % num_heads != 0)
    problems.push_back("hidden_size " + std::to_string(hidden_size) + " is not a multiple of num_heads " +
                       std::to_string(num_heads));
  if (!attention.empty() && static_cast<int64_t>(attention.size()) != num_layers)
    problems.push_back("attention lists " + std::to_string(attention.size()) + " layers, num_layers is " +
                       std::to_string(num_layers));
  for (const auto& a : attention)
    if (a != "full" && a != "row" && a != "column" && a != "conv")
      problems.push_back("attention: unknown kind '" + a + "' (full, row, column, conv)");
  return problems;
}

DalleConfig DalleConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw LoadError(source, "DALL·E config must be a JSON object");
  DalleConfig c;
  std::vector<std::string> problems;
  config::check_keys(j, "", {},
                     {"model_type", "text_vocab_size", "text_len", "image_vocab_size", "image_rows", "image_cols",
                      "hidden_size", "num_layers", "num_heads", "mlp_ratio", "conv_kernel", "attention"},
                     problems);
  config::read(j, "", "text_vocab_size", c.text_vocab_size, problems);
  config::read(j, "", "text_len", c.text_len, problems);
  config::read(j, "", "image_vocab_size", c.image_vocab_size, problems);
  config::read(j, "", "image_rows", c.image_rows, problems);
  config::read(j, "", "image_cols", c.image_cols, problems);
  config::read(j, "", "hidden_size", c.hidden_size, problems);
  config::read(j, "", "num_layers", c.num_layers, problems);
  config::read(j, "", "num_heads", c.num_heads, problems);
  config::read(j, "", "mlp_ratio", c.mlp_ratio, problems);
  config::read(j, "", "conv_kernel", c.conv_kernel, problems);
  config::read(j, "", "attention", c.attention, problems);
  for (auto& p : c.validate()) problems.push_back(std::move(p));
  if (!problems.empty()) throw LoadError(source, "invalid DALL·E config: " + config::describe(problems));
  return c;
}

DalleConfig DalleConfig::from_file(const std::string& path) {
  return from_json(config::read_file(path, config::kMaxModelConfigBytes), path);
}

json DalleConfig::to_json() const {
  json j = {{"model_type", "genvis_dalle"},   {"text_vocab_size", text_vocab_size},
            {"text_len", text_len},           {"image_vocab_size", image_vocab_size},
            {"image_rows", image_rows},       {"image_cols", image_cols},
            {"hidden_size", hidden_size},     {"num_layers", num_layers},
            {"num_heads", num_heads},         {"mlp_ratio", mlp_ratio},
            {"conv_kernel", conv_kernel}};
  std::vector<std::string> layers;
  for (int64_t i = 0; i < num_layers; ++i) layers.push_back(dalle_attention_name(layer_attention(i)));
  j["attention"] = layers;
  return j;
}

}  // namespace genvis::models
