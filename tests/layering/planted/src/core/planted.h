// Planted violation (tests/layering): core reaches up into pipelines.
#pragma once
#include <torch/torch.h>
#include "core/error.h"
#include "genvis/version.h"
#include "pipelines/stable_diffusion.h"
