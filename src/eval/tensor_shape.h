// "[2, 3]" for error messages of the eval layer; "undefined" for an undefined tensor.
#pragma once
#include <ATen/ATen.h>
#include <string>

namespace genvis::eval {

inline std::string shape(const at::Tensor& t) { return t.defined() ? c10::str(t.sizes()) : "undefined"; }

}  // namespace genvis::eval
