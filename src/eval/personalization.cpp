#include "eval/personalization.h"

#include "core/error.h"

#include <torch/torch.h>

namespace genvis::eval {

double mean_cosine(const at::Tensor& a, const at::Tensor& b) {
  return a.to(at::kDouble).matmul(b.to(at::kDouble).t()).mean().item<double>();
}

double mean_pairwise_distance(const at::Tensor& a) {
  const int64_t n = a.size(0);
  if (n < 2) return 0;
  const at::Tensor sim = a.to(at::kDouble).matmul(a.to(at::kDouble).t());
  const double off_diagonal = sim.sum().item<double>() - sim.diagonal().sum().item<double>();
  return 1.0 - off_diagonal / static_cast<double>(n * (n - 1));
}

PersonalizationScores score_personalization(models::ContrastiveEncoder& encoder, const PersonalizationImages& s) {
  for (const auto* t : {&s.instance, &s.subject, &s.context, &s.class_before, &s.class_after})
    if (!t->defined() || t->dim() != 4 || t->size(0) == 0)
      throw UsageError("personalisation scores need non-empty [N,3,H,W] image sets");
  if (static_cast<int64_t>(s.context_texts.size()) != s.context.size(0))
    throw UsageError("personalisation scores: " + std::to_string(s.context.size(0)) + " context images but " +
                     std::to_string(s.context_texts.size()) + " texts");
  if (s.class_before.size(0) != s.class_after.size(0))
    throw UsageError("personalisation scores: class image sets before and after differ in size");
  torch::NoGradGuard no_grad;
  const at::Tensor instance = encoder.embed_images(s.instance), subject = encoder.embed_images(s.subject);
  const at::Tensor context = encoder.embed_images(s.context), texts = encoder.embed_texts(s.context_texts);
  const at::Tensor before = encoder.embed_images(s.class_before), after = encoder.embed_images(s.class_after);
  PersonalizationScores out;
  out.subject_fidelity = mean_cosine(subject, instance);
  out.prompt_fidelity = (context.to(at::kDouble) * texts.to(at::kDouble)).sum(1).mean().item<double>();
  out.class_drift = 1.0 - (before.to(at::kDouble) * after.to(at::kDouble)).sum(1).mean().item<double>();
  out.class_diversity_before = mean_pairwise_distance(before);
  out.class_diversity_after = mean_pairwise_distance(after);
  return out;
}

}  // namespace genvis::eval
