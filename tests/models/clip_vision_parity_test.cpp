// CLIPVisionModel against transformers (fixture "clip_vision", Wan 2.1 I2V's image encoder):
// every hidden state, the penultimate one Wan uses, the last and the pooled output.
#include "io/weights.h"
#include "models/clip_vision/clip_vision_model.h"
#include "support/test_support.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace genvis::models {
namespace {

TEST(CLIPVisionParity, HiddenStatesAndPooledOutput) {
  GENVIS_REQUIRE_FIXTURES();
  const std::string name = "clip_vision";
  const nlohmann::json c = test::fixture_case(name);
  std::string folder, io_file;
  for (const auto& file : c.at("files")) {
    const std::string path = test::fixtures_dir() + "/" + file.get<std::string>();
    if (path.ends_with("io.safetensors")) io_file = path;
    if (path.ends_with("config.json")) folder = std::filesystem::path(path).parent_path().string();
  }
  auto model = load_clip_vision_model(folder);
  const auto io = io::open_weights(io_file);
  const auto tol = test::fixture_tolerance(name);
  torch::NoGradGuard no_grad;
  const CLIPVisionOutput out = model->forward(io->load("pixel_values", at::kFloat));
  const at::Tensor hidden = io->load("hidden_states", at::kFloat);
  ASSERT_EQ(static_cast<int64_t>(out.hidden_states.size()), hidden.size(0));
  for (int64_t i = 0; i < hidden.size(0); ++i)
    test::expect_close(out.hidden_states[static_cast<size_t>(i)], hidden[i], tol, "hidden_states[" + std::to_string(i) + "]");
  test::expect_close(out.hidden_states[out.hidden_states.size() - 2], io->load("penultimate_hidden_state", at::kFloat),
                     tol, "penultimate_hidden_state");
  test::expect_close(out.last_hidden_state, io->load("last_hidden_state", at::kFloat), tol, "last_hidden_state");
  test::expect_close(out.pooler_output, io->load("pooler_output", at::kFloat), tol, "pooler_output");
}

}  // namespace
}  // namespace genvis::models
