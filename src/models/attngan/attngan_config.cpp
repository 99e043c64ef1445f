#include "models/attngan/attngan_config.h"

#include "core/config_reader.h"
#include "core/error.h"

namespace genvis::models {
namespace {

using json = nlohmann::json;

bool power_of_two(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace

std::vector<int64_t> AttnGANConfig::stage_sizes() const {
  std::vector<int64_t> sizes;
  for (int64_t s = base_size(), i = 0; i < branch_num; ++i, s *= 2) sizes.push_back(s);
  return sizes;
}

int64_t AttnGANConfig::init_upsamples() const {
  int64_t u = 0;
  for (int64_t s = base_size(); s > 4; s >>= 1) ++u;
  return u;
}

std::vector<std::string> AttnGANConfig::validate() const {
  std::vector<std::string> problems;
  if (branch_num < 1 || branch_num > 4) problems.push_back("branch_num must be in 1..4");
  if (image_size < 8 || image_size > 1024 || !power_of_two(image_size))
    problems.push_back("image_size must be a power of two in 8..1024");
  else if (branch_num >= 1 && branch_num <= 4 && base_size() < 8)
    problems.push_back("image_size / 2^(branch_num - 1) (the first stage's size) must be >= 8, got " +
                       std::to_string(base_size()));
  if (gf_dim < 1 || gf_dim > 1024) problems.push_back("gf_dim must be in 1..1024");
  if (df_dim < 1 || df_dim > 1024) problems.push_back("df_dim must be in 1..1024");
  if (z_dim < 1 || z_dim > 4096) problems.push_back("z_dim must be in 1..4096");
  if (condition_dim < 1 || condition_dim > 4096) problems.push_back("condition_dim must be in 1..4096");
  if (embedding_dim < 1 || embedding_dim > 4096) problems.push_back("embedding_dim must be in 1..4096");
  if (r_num < 0 || r_num > 16) problems.push_back("r_num must be in 0..16");
  return problems;
}

AttnGANConfig AttnGANConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw LoadError(source, "AttnGAN config must be a JSON object");
  AttnGANConfig c;
  std::vector<std::string> problems;
  config::check_keys(j, "", {},
                     {"model_type", "image_size", "branch_num", "gf_dim", "df_dim", "z_dim", "condition_dim",
                      "embedding_dim", "r_num"},
                     problems);
  config::read(j, "", "image_size", c.image_size, problems);
  config::read(j, "", "branch_num", c.branch_num, problems);
  config::read(j, "", "gf_dim", c.gf_dim, problems);
  config::read(j, "", "df_dim", c.df_dim, problems);
  config::read(j, "", "z_dim", c.z_dim, problems);
  config::read(j, "", "condition_dim", c.condition_dim, problems);
  config::read(j, "", "embedding_dim", c.embedding_dim, problems);
  config::read(j, "", "r_num", c.r_num, problems);
  for (auto& p : c.validate()) problems.push_back(std::move(p));
  if (!problems.empty()) throw LoadError(source, "invalid AttnGAN config: " + config::describe(problems));
  return c;
}

AttnGANConfig AttnGANConfig::from_file(const std::string& path) {
  return from_json(config::read_file(path, config::kMaxModelConfigBytes), path);
}

json AttnGANConfig::to_json() const {
  return {{"model_type", "genvis_attngan"}, {"image_size", image_size},       {"branch_num", branch_num},
          {"gf_dim", gf_dim},               {"df_dim", df_dim},               {"z_dim", z_dim},
          {"condition_dim", condition_dim}, {"embedding_dim", embedding_dim}, {"r_num", r_num}};
}

}  // namespace genvis::models
