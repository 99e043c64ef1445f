#include "api/test_family.h"

#include "core/error.h"
#include "core/file.h"
#include "pipelines/common/noise.h"
#include "pipelines/registry.h"

#include <filesystem>
#include <fstream>
#include <mutex>

namespace genvis::test {

namespace {

class TestGradientPipeline : public pipelines::Pipeline {
public:
  TestGradientPipeline(std::string name, int64_t size, std::vector<double> bias) : bias_(std::move(bias)) {
    info_.class_name = kTestFamilyClass;
    info_.family = "test-gradient";
    info_.name = std::move(name);
    info_.native_width = info_.native_height = size;
    info_.size_multiple = 4;
  }
  const pipelines::PipelineInfo& info() const override { return info_; }

protected:
  pipelines::Result run(const pipelines::Request& r, const pipelines::Callbacks& callbacks) override {
    const int64_t b = r.batch, h = *r.height, w = *r.width;
    const at::Tensor ramp = at::linspace(0, 1, w).view({1, 1, 1, w}).expand({b, 3, h, w});
    const at::Tensor bias = at::tensor(bias_, at::kDouble).to(at::kFloat).view({1, 3, 1, 1});
    const double tint = static_cast<double>(r.prompt.size() % 7) / 7.0;
    const at::Tensor noise = pipelines::seeded_noise(r.seed, b, {3, h, w}, at::TensorOptions().dtype(at::kFloat));
    pipelines::Result out;
    out.samples = (0.5 * ramp + 0.3 * bias + 0.2 * tint + 0.05 * noise).clamp(0, 1);
    io::GenerationParameters p;
    p.prompt = r.prompt;
    p.width = static_cast<int>(w);
    p.height = static_cast<int>(h);
    p.model = info_.name;
    for (int64_t i = 0; i < b; ++i) {
      p.seed = r.seed + static_cast<uint64_t>(i);
      out.parameters.push_back(p);
    }
    if (callbacks.on_step) callbacks.on_step(1, 1);
    return out;
  }

private:
  pipelines::PipelineInfo info_;
  std::vector<double> bias_;
};

std::unique_ptr<pipelines::Pipeline> load_test_gradient(const pipelines::ModelSource& source) {
  const std::string path = (std::filesystem::path(source.model) / "config.json").string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path, 1 << 20));
  } catch (const nlohmann::json::exception& e) {
    throw LoadError(path, std::string("not valid JSON: ") + e.what());
  }
  if (!j.contains("sample_size") || !j["sample_size"].is_number_integer())
    throw LoadError(path, "sample_size", "missing or not an integer");
  const auto bias = j.value("channels_bias", std::vector<double>{0.2, 0.4, 0.6});
  if (bias.size() != 3) throw LoadError(path, "channels_bias", "needs 3 values");
  return std::make_unique<TestGradientPipeline>(std::filesystem::path(source.model).filename().string(),
                                                j["sample_size"].get<int64_t>(), bias);
}

}  // namespace

void register_test_family() {
  static std::once_flag once;
  std::call_once(once, [] {
    // The one registration line a family needs:
    pipelines::register_pipeline({kTestFamilyClass, "test-only gradient family", load_test_gradient});
  });
}

void write_test_family_model(const std::string& dir, int size) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/model_index.json") << R"({"_class_name": ")" << kTestFamilyClass << R"("})";
  std::ofstream(dir + "/config.json") << R"({"sample_size": )" << size << R"(, "channels_bias": [0.9, 0.1, 0.3]})";
}

}  // namespace genvis::test
