// Measuring subject personalisation (DreamBooth, LoRA, Textual Inversion) with genvis' own
// contrastive text-image encoder, the analogues of the DreamBooth paper's metrics:
//   subject fidelity   mean cosine similarity between generated subject images and the instance
//                      images (image-image, "CLIP-I"/"DINO")
//   prompt fidelity    mean cosine similarity between images generated for new-context prompts and
//                      the prompt texts ("CLIP-T"; the judge reads the subject by plain words)
//   class drift        1 - mean cosine similarity between class-prompt images of the same seed
//                      before and after fine-tuning (0: the prior is untouched)
//   class diversity    mean pairwise (1 - cosine) within the class-prompt images (before / after;
//                      a collapse onto the subject lowers it)
//
//   PersonalizationImages set{instance, subject, context, context_texts, before, after};
//   PersonalizationScores s = score_personalization(encoder, set);
#pragma once
#include "models/contrastive/contrastive_encoder.h"

#include <ATen/ATen.h>
#include <string>
#include <vector>

namespace genvis::eval {

struct PersonalizationImages {
  at::Tensor instance;                     // [I,3,H,W] in [0,1]: the subject's training images
  at::Tensor subject;                      // [N,3,H,W]: generated for the subject prompt
  at::Tensor context;                      // [M,3,H,W]: generated for new-context prompts
  std::vector<std::string> context_texts;  // M judge texts (subject named in plain words)
  at::Tensor class_before, class_after;    // [K,3,H,W] each, same seeds: the class prompt
};

struct PersonalizationScores {
  double subject_fidelity = 0, prompt_fidelity = 0, class_drift = 0;
  double class_diversity_before = 0, class_diversity_after = 0;
};

// Mean of a·b over every pair (rows unit-normalised): [A,P] x [B,P] -> scalar.
double mean_cosine(const at::Tensor& a, const at::Tensor& b);
// Mean of 1 - a_i·a_j over pairs i < j (0 for fewer than two rows).
double mean_pairwise_distance(const at::Tensor& a);

// UsageError for empty sets or mismatched counts (context vs texts, before vs after).
PersonalizationScores score_personalization(models::ContrastiveEncoder& encoder, const PersonalizationImages& images);

}  // namespace genvis::eval
