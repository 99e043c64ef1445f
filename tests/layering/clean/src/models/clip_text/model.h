#pragma once
#include "genvis/version.h"
#include "nn/linear.h"
#include "tokenizers/clip.h"
