#pragma once
// A tensor's shape as text for error messages: "[1, 4, 8, 8]", or "an undefined tensor".
#include <ATen/core/Tensor.h>
#include <c10/util/StringUtil.h>

#include <string>

namespace genvis {

inline std::string shape_of(const at::Tensor& t) { return t.defined() ? c10::str(t.sizes()) : "an undefined tensor"; }

}  // namespace genvis
