// CLIPVisionConfig checks and input shape errors.
#include "core/error.h"
#include "models/clip_vision/clip_vision_model.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace genvis::models {
namespace {

TEST(CLIPVisionConfig, ProblemsListedAndVisionConfigOfACLIPConfig) {
  nlohmann::json j = {{"hidden_size", 16}, {"intermediate_size", 32}, {"num_hidden_layers", 2},
                      {"num_attention_heads", 3}, {"image_size", 30}, {"patch_size", 4}, {"hidden_act", "relu"},
                      {"colour", 1}};
  try {
    CLIPVisionConfig::from_json(j, "config.json");
    FAIL() << "accepted";
  } catch (const LoadError& e) {
    const std::string m = e.what();
    for (const char* want : {"colour", "not divisible by num_attention_heads", "not divisible by patch_size", "hidden_act"})
      EXPECT_NE(m.find(want), std::string::npos) << want << " not in: " << m;
  }
  const nlohmann::json clip = {{"vision_config", {{"hidden_size", 16}, {"intermediate_size", 32},
                                                  {"num_hidden_layers", 1}, {"num_attention_heads", 2},
                                                  {"image_size", 8}, {"patch_size", 4}}}};
  const auto c = CLIPVisionConfig::from_json(clip);
  EXPECT_EQ(c.num_positions(), 5);
  torch::NoGradGuard no_grad;
  CLIPVisionModel model(c);
  const auto out = model->forward(torch::randn({2, 3, 8, 8}));
  EXPECT_EQ(out.hidden_states.size(), 2u);
  EXPECT_EQ(out.last_hidden_state.sizes(), (std::vector<int64_t>{2, 5, 16}));
  EXPECT_EQ(out.pooler_output.sizes(), (std::vector<int64_t>{2, 16}));
  EXPECT_THROW(model->forward(torch::randn({2, 3, 16, 16})), UsageError);
  EXPECT_THROW(model->forward(torch::randn({2, 1, 8, 8})), UsageError);
}

}  // namespace
}  // namespace genvis::models
