#include "io/image_tensor.h"

#include "core/error.h"

#include <algorithm>
#include <c10/util/StringUtil.h>

namespace genvis::io {

at::Tensor image_to_tensor(const Image& image) {
  image.validate("image_to_tensor");
  const float max_value = static_cast<float>(image.max_value());
  at::Tensor hwc = at::empty({image.height, image.width, image.channels}, at::TensorOptions().dtype(at::kFloat));
  float* dst = hwc.data_ptr<float>();
  for (size_t i = 0; i < image.pixels.size(); ++i) dst[i] = 2.0f * (static_cast<float>(image.pixels[i]) / max_value) - 1.0f;
  return hwc.permute({2, 0, 1}).contiguous().unsqueeze(0);  // [1, C, H, W]
}

Image tensor_to_image(const at::Tensor& tensor) {
  if (!tensor.defined()) throw UsageError("tensor_to_image: undefined tensor");
  at::Tensor t = tensor.detach();
  if (t.dim() == 4) {
    if (t.size(0) != 1)
      throw UsageError("tensor_to_image: expected a batch of 1, got shape " + std::string(c10::str(t.sizes())));
    t = t[0];
  }
  if (t.dim() != 3)
    throw UsageError("tensor_to_image: expected [C, H, W] or [1, C, H, W], got shape " + std::string(c10::str(t.sizes())));
  const int64_t c = t.size(0), h = t.size(1), w = t.size(2);
  if (c != 1 && c != 3 && c != 4)
    throw UsageError("tensor_to_image: expected 1, 3 or 4 channels, got shape " + std::string(c10::str(t.sizes())));
  if (h < 1 || w < 1 || h > 65535 || w > 65535)
    throw UsageError("tensor_to_image: image size " + std::to_string(w) + "x" + std::to_string(h) +
                     " is outside 1..65535 per side");
  if (!t.is_floating_point()) t = t.to(at::kFloat);
  if (t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16) {
    // Rounded to the dtype after each op, as native half arithmetic does (libtorch 1.13 has
    // no CPU clamp for Half); clamping to [0, 1] is exact in any dtype.
    const at::ScalarType dtype = t.scalar_type();
    at::Tensor f = (t.to(at::kFloat) / 2).to(dtype).to(at::kFloat);
    t = (f + 0.5).to(dtype).to(at::kFloat).clamp(0, 1);
  } else {
    t = (t / 2 + 0.5).clamp(0, 1);
  }
  t = t.to(at::kCPU).to(at::kFloat);
  t = (t * 255).round().nan_to_num(0.0).to(at::kByte).permute({1, 2, 0}).contiguous();  // [H, W, C]

  Image image = Image::blank(static_cast<int>(w), static_cast<int>(h), static_cast<int>(c));
  const uint8_t* src = t.data_ptr<uint8_t>();
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = src[i];
  return image;
}

at::Tensor square_resize(const at::Tensor& images, int64_t side) {
  if (images.dim() != 4 || images.size(2) < 1 || images.size(3) < 1 || side < 1)
    throw UsageError("square_resize: expected images [B,C,H,W] and a side >= 1, got " + c10::str(images.sizes()));
  at::Tensor x = images.to(at::kFloat);
  const int64_t h = x.size(2), w = x.size(3), s = std::min(h, w);
  if (h != w) x = x.narrow(2, (h - s) / 2, s).narrow(3, (w - s) / 2, s);
  if (s > side) return at::adaptive_avg_pool2d(x, {side, side});
  if (s < side) return at::upsample_bilinear2d(x.contiguous(), {side, side}, /*align_corners=*/false);
  return x.contiguous();
}

}  // namespace genvis::io
