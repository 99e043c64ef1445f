// Conversions between the public API's plain types and the library's (shared by the C++ and C APIs).
#pragma once
#include "genvis/genvis.hpp"
#include "pipelines/pipeline.h"

namespace genvis::api::detail {

// Rethrows the exception in flight as genvis::api::Error (library errors keep their kind).
[[noreturn]] void rethrow();
// RGB bytes -> [1,channels,H,W] in [-1,1]; UsageError naming `field` for inconsistent sizes.
at::Tensor image_tensor(const Image& image, int channels, const char* field);
// [3,H,W] in [0,1] -> RGB bytes.
Image image_of(const at::Tensor& sample, const std::string& parameters);
pipelines::Request request_of(const GenerateRequest& request);
GenerateResult result_of(const pipelines::Result& result);

}  // namespace genvis::api::detail
