// WanTransformer3DModel against diffusers 0.33.1 (fixtures "wan21_transformer", T2V, and
// "wan21_i2v_transformer", I2V): F16 weights, float32 compute, every size from the fixture files.
#include "io/weights.h"
#include "models/wan/wan_transformer.h"
#include "nn/state_dict.h"
#include "support/test_support.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace genvis::models {
namespace {


void run_case(const std::string& name) {
  GENVIS_REQUIRE_FIXTURES();
  const test::FixtureFiles f = test::fixture_files(name);
  const auto config = WanTransformer3DConfig::from_file(f.config);
  WanTransformer3DModel dit(config);
  const auto weights = io::open_weights(f.weights);
  const auto report = nn::load_state_dict(*dit, *weights, {.dtype = at::kFloat});
  EXPECT_EQ(report.loaded, weights->tensors().size());
  const auto io = io::open_weights(f.io);
  torch::NoGradGuard no_grad;
  const at::Tensor image =
      io->contains("encoder_hidden_states_image") ? io->load("encoder_hidden_states_image", at::kFloat) : at::Tensor();
  EXPECT_EQ(image.defined(), config.is_i2v());
  const at::Tensor out = dit->forward(io->load("hidden_states", at::kFloat), io->load("timestep"),
                                      io->load("encoder_hidden_states", at::kFloat), image);
  test::expect_close(out, io->load("out", at::kFloat), test::fixture_tolerance(name, "out"), name + " out");
}

TEST(WanTransformerParity, TextToVideo) { run_case("wan21_transformer"); }
TEST(WanTransformerParity, ImageToVideo) { run_case("wan21_i2v_transformer"); }

}  // namespace
}  // namespace genvis::models
