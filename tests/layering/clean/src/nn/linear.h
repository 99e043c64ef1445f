#pragma once
#include <torch/torch.h>
#include "io/file.h"
