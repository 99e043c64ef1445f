// Personalisation metrics: the cosine helpers in closed form, and the scores on real images with
// the shipped contrastive encoder (the subject's own images beat noise; an unchanged prior has no
// drift; a collapsed class set has lower diversity).
#include "core/error.h"
#include "data/folder.h"
#include "eval/personalization.h"
#include "io/image_tensor.h"
#include "support/test_support.h"

#include <filesystem>
#include <torch/torch.h>

namespace genvis::eval {
namespace {

namespace fs = std::filesystem;

TEST(PersonalizationMetrics, CosineHelpersInClosedForm) {
  const at::Tensor e = torch::eye(3);  // three orthonormal rows
  EXPECT_DOUBLE_EQ(mean_cosine(e, e), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(mean_pairwise_distance(e), 1.0);
  const at::Tensor same = torch::ones({4, 2}) / std::sqrt(2.0);
  EXPECT_NEAR(mean_pairwise_distance(same), 0.0, 1e-6);  // (f32 inputs)
  EXPECT_NEAR(mean_cosine(same, e.narrow(1, 0, 2)), 1.0 / std::sqrt(2.0) * 2.0 / 3.0, 1e-6);
  EXPECT_EQ(mean_pairwise_distance(e.narrow(0, 0, 1)), 0.0);
}

TEST(PersonalizationMetrics, SubjectImagesBeatNoiseAndAnUnchangedPriorHasNoDrift) {
  const fs::path encoder_dir = fs::path(GENVIS_SOURCE_DIR) / "models/genvis-contrastive-emoji";
  models::ContrastiveEncoder encoder = models::ContrastiveEncoder::load(encoder_dir.string());
  data::FolderOptions fo;
  fo.path = (fs::path(GENVIS_SOURCE_DIR) / "examples/red-star").string();
  fo.resolution = 32;
  fo.bucketing = false;
  fo.bucket_step = 8;
  const data::FolderDataset ds(fo);
  std::vector<at::Tensor> rows;
  for (size_t i = 0; i < ds.size(); ++i) rows.push_back((io::image_to_tensor(ds.get(i).image.with_channels(3)) + 1) / 2);
  const at::Tensor instance = at::cat(rows);
  torch::manual_seed(0);
  const at::Tensor noise = torch::rand({8, 3, 32, 32});

  PersonalizationImages good{instance, instance, instance, std::vector<std::string>(4, "a red star"), noise, noise};
  PersonalizationImages bad{instance, noise.narrow(0, 0, 4), noise.narrow(0, 0, 4), std::vector<std::string>(4, "a red star"),
                            instance.repeat({2, 1, 1, 1}), instance.narrow(0, 0, 1).repeat({8, 1, 1, 1})};
  const auto g = score_personalization(encoder, good), b = score_personalization(encoder, bad);
  EXPECT_GT(g.subject_fidelity, b.subject_fidelity + 0.1);
  EXPECT_GT(g.prompt_fidelity, b.prompt_fidelity);
  EXPECT_NEAR(g.class_drift, 0.0, 1e-6);
  EXPECT_GT(b.class_drift, 0.1);
  // A class set collapsed onto one image has no diversity left.
  EXPECT_GT(b.class_diversity_before, 0.05);
  EXPECT_NEAR(b.class_diversity_after, 0.0, 1e-6);
  PersonalizationImages mismatched = good;
  mismatched.context_texts.pop_back();
  EXPECT_THROW(score_personalization(encoder, mismatched), UsageError);
}

}  // namespace
}  // namespace genvis::eval
