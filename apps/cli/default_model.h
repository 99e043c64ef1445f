// The built-in model and the shipped judges, as the commands name them (pipelines/shipped_models.h).
#pragma once
#include "pipelines/shipped_models.h"

namespace genvis::cli {

using pipelines::default_model_candidates;
using pipelines::find_default_model;
using pipelines::find_shipped_model;
using pipelines::kDefaultModelName;
using pipelines::shipped_model_candidates;

}  // namespace genvis::cli
