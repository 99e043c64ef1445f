// Images <-> tensors in the diffusers convention: float32 [1, C, H, W] in [-1, 1].
#pragma once
#include "io/image.h"

#include <ATen/ATen.h>

namespace genvis::io {

// [1, C, H, W] float32 on the CPU, x / max_value * 2 - 1 computed in float32 like diffusers'
// VaeImageProcessor (max_value 255, or 65535 for 16-bit images). Channels are kept as they are.
at::Tensor image_to_tensor(const Image& image);

// Accepts [C, H, W] or [1, C, H, W] with C in {1, 3, 4}, any device and dtype (integers are
// taken as float32). Computed exactly like diffusers' postprocess + numpy_to_pil:
// v = clamp(x / 2 + 0.5, 0, 1) in the tensor's dtype, then round(float32(v) * 255) with ties
// to even; NaN becomes 0. Returns an 8-bit image. Throws UsageError for other shapes.
Image tensor_to_image(const at::Tensor& tensor);

// A judge's view of a batch: images [B,C,H,W] (any float range) centre-cropped to a square and
// resized to side x side (area averaging down: no aliasing; bilinear up), float32 on the
// input's device, values unchanged in range. The preprocessing of genvis' own encoders and classifiers.
at::Tensor square_resize(const at::Tensor& images, int64_t side);

}  // namespace genvis::io
