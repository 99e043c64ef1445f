// The model configs read every key through core/config_reader: the reference configs in
// ../shared/fixtures load, and an unknown key, a wrong type or an unsupported value is reported
// by name, all at once, instead of being ignored.
#include "core/config_reader.h"
#include "core/error.h"
#include "models/autoencoder_kl/autoencoder_kl.h"
#include "models/clip_text/clip_text_config.h"
#include "models/unet2d_condition/unet2d_condition.h"
#include "support/test_support.h"

#include <filesystem>
#include <functional>

namespace genvis::models {
namespace {

using json = nlohmann::json;

// Every config.json under the fixtures whose class `accepts` says is this family.
std::vector<std::string> fixture_configs(const std::function<bool(const json&)>& accepts) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(test::fixtures_dir()))
    if (e.path().filename() == "config.json" && accepts(config::read_file(e.path().string())))
      out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

bool class_is(const json& j, const char* name) { return j.value("_class_name", "") == name; }

std::string load_error(const std::function<void()>& load) {
  try {
    load();
  } catch (const LoadError& e) {
    return e.what();
  }
  return "";
}

void expect_all(const std::string& what, std::initializer_list<const char*> parts) {
  EXPECT_FALSE(what.empty()) << "accepted";
  for (const char* part : parts) EXPECT_NE(what.find(part), std::string::npos) << part << " not in: " << what;
}

TEST(ModelConfigs, UNetReferenceConfigsLoadAndUnknownKeysAreReported) {
  GENVIS_REQUIRE_FIXTURES();
  const auto paths = fixture_configs([](const json& j) { return class_is(j, "UNet2DConditionModel"); });
  ASSERT_FALSE(paths.empty()) << "no UNet2DConditionModel config in " << test::fixtures_dir();
  for (const auto& path : paths) {
    SCOPED_TRACE(path);
    json j = config::read_file(path);
    const auto c = UNet2DConditionConfig::from_json(j, path);
    EXPECT_EQ(c.block_out_channels, j.at("block_out_channels").get<std::vector<int64_t>>());
    j["colour"] = "red";
    j["block_out_chanels"] = j.at("block_out_channels");
    j["in_channels"] = "four";
    j["time_cond_proj_dim"] = 8;
    expect_all(load_error([&] { UNet2DConditionConfig::from_json(j, path); }),
               {"config.json", "4 problem(s)", "unknown key colour", "unknown key block_out_chanels",
                "in_channels has the wrong type", "unsupported time_cond_proj_dim"});
  }
}

TEST(ModelConfigs, VAEReferenceConfigsLoadAndUnknownKeysAreReported) {
  GENVIS_REQUIRE_FIXTURES();
  const auto paths = fixture_configs([](const json& j) { return class_is(j, "AutoencoderKL"); });
  ASSERT_FALSE(paths.empty()) << "no AutoencoderKL config in " << test::fixtures_dir();
  for (const auto& path : paths) {
    SCOPED_TRACE(path);
    json j = config::read_file(path);
    EXPECT_EQ(AutoencoderKLConfig::from_json(j, path).latent_channels, j.value("latent_channels", int64_t{4}));
    j["temporal"] = true;
    j["latents_mean"] = {0.1, 0.2, 0.3, 0.4};
    j["scaling_factor"] = "small";
    expect_all(load_error([&] { AutoencoderKLConfig::from_json(j, path); }),
               {"config.json", "unknown key temporal", "unsupported latents_mean", "scaling_factor has the wrong type"});
  }
}

TEST(ModelConfigs, CLIPTextReferenceConfigsLoadAndUnknownKeysAreReported) {
  GENVIS_REQUIRE_FIXTURES();
  const auto paths = fixture_configs([](const json& j) { return j.value("model_type", "") == "clip_text_model"; });
  ASSERT_FALSE(paths.empty()) << "no clip_text_model config in " << test::fixtures_dir();
  for (const auto& path : paths) {
    SCOPED_TRACE(path);
    json j = config::read_file(path);
    EXPECT_EQ(CLIPTextConfig::from_json(j, path).hidden_size, j.at("hidden_size").get<int64_t>());
    // transformers' generic PretrainedConfig keys are accepted; a misspelt model key is not.
    j["use_bfloat16"] = false;
    j["num_beams"] = 1;
    j["_name_or_path"] = "openai/clip-vit-large-patch14";
    EXPECT_NO_THROW(CLIPTextConfig::from_json(j, path));
    j["num_hidden_layer"] = 3;
    expect_all(load_error([&] { CLIPTextConfig::from_json(j, path); }),
               {"config.json", "unknown key num_hidden_layer"});
  }
}

TEST(ModelConfigs, NotAnObjectIsOneClearError) {
  for (const auto& load : std::vector<std::function<void()>>{
           [] { UNet2DConditionConfig::from_json(json::array(), "u.json"); },
           [] { AutoencoderKLConfig::from_json(json("vae"), "v.json"); },
           [] { CLIPTextConfig::from_json(json(3), "t.json"); }}) {
    const std::string what = load_error(load);
    EXPECT_NE(what.find("must be a JSON object"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace genvis::models
