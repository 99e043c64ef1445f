// Planted violations (tests/layering): a public header includes a src layer and libtorch.
#pragma once
#include <string>
#include "genvis/version.h"
#include "core/error.h"
#include <torch/torch.h>
