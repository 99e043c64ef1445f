#include "pipelines/common/guidance.h"

namespace genvis::pipelines {

at::Tensor guidance_combine(const at::Tensor& uncond, const at::Tensor& cond, double scale) {
  return uncond + scale * (cond - uncond);
}

at::Tensor classifier_free_guidance(const at::Tensor& x, double scale,
                                    const std::function<at::Tensor(const at::Tensor& doubled)>& network) {
  const auto halves = network(at::cat({x, x})).chunk(2);
  return guidance_combine(halves[0], halves[1], scale);
}

}  // namespace genvis::pipelines
