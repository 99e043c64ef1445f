#include "models/dfgan/dfgan_config.h"

#include "core/config_reader.h"
#include "core/error.h"

#include <algorithm>

namespace genvis::models {
namespace {

using json = nlohmann::json;

// nf * min(2^i, 8) for i in [0, log2(image_size) - 1): the official get_*_in_out_chs.
std::vector<int64_t> level_channels(int64_t nf, int64_t image_size) {
  int64_t layers = 0;
  for (int64_t s = image_size; s > 1; s >>= 1) ++layers;  // log2(image_size)
  std::vector<int64_t> ch;
  for (int64_t i = 0; i < layers - 1; ++i) ch.push_back(nf * std::min<int64_t>(int64_t{1} << i, 8));
  return ch;
}

std::vector<std::pair<int64_t, int64_t>> pairs(const std::vector<int64_t>& ch) {
  std::vector<std::pair<int64_t, int64_t>> p;
  for (size_t i = 0; i + 1 < ch.size(); ++i) p.emplace_back(ch[i], ch[i + 1]);
  return p;
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> DFGANConfig::generator_channels() const {
  auto ch = level_channels(ngf, image_size);
  std::reverse(ch.begin(), ch.end());
  return pairs(ch);
}

std::vector<std::pair<int64_t, int64_t>> DFGANConfig::discriminator_channels() const {
  return pairs(level_channels(ndf, image_size));
}

int64_t DFGANConfig::generator_fc_channels() const {
  const auto p = generator_channels();
  return p.empty() ? ngf : p.front().first;
}

int64_t DFGANConfig::discriminator_out_channels() const {
  const auto p = discriminator_channels();
  return p.empty() ? ndf : p.back().second;
}

std::vector<std::string> DFGANConfig::validate() const {
  std::vector<std::string> problems;
  if (image_size < 8 || image_size > 1024 || (image_size & (image_size - 1)) != 0)
    problems.push_back("image_size must be a power of two in 8..1024");
  if (ngf < 1 || ngf > 1024) problems.push_back("ngf must be in 1..1024");
  if (ndf < 1 || ndf > 1024) problems.push_back("ndf must be in 1..1024");
  if (z_dim < 1 || z_dim > 4096) problems.push_back("z_dim must be in 1..4096");
  if (cond_dim < 1 || cond_dim > 4096) problems.push_back("cond_dim must be in 1..4096");
  if (output != "tanh" && output != "clamp") problems.push_back("output must be \"tanh\" or \"clamp\", got \"" + output + "\"");
  return problems;
}

DFGANConfig DFGANConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw LoadError(source, "DF-GAN config must be a JSON object");
  DFGANConfig c;
  std::vector<std::string> problems;
  config::check_keys(j, "", {}, {"model_type", "image_size", "ngf", "ndf", "z_dim", "cond_dim", "output"}, problems);
  config::read(j, "", "image_size", c.image_size, problems);
  config::read(j, "", "ngf", c.ngf, problems);
  config::read(j, "", "ndf", c.ndf, problems);
  config::read(j, "", "z_dim", c.z_dim, problems);
  config::read(j, "", "cond_dim", c.cond_dim, problems);
  config::read(j, "", "output", c.output, problems);
  for (auto& p : c.validate()) problems.push_back(std::move(p));
  if (!problems.empty()) throw LoadError(source, "invalid DF-GAN config: " + config::describe(problems));
  return c;
}

DFGANConfig DFGANConfig::from_file(const std::string& path) {
  return from_json(config::read_file(path, config::kMaxModelConfigBytes), path);
}

json DFGANConfig::to_json() const {
  return {{"model_type", "genvis_dfgan"}, {"image_size", image_size}, {"ngf", ngf},
          {"ndf", ndf},                   {"z_dim", z_dim},           {"cond_dim", cond_dim}, {"output", output}};
}

}  // namespace genvis::models
