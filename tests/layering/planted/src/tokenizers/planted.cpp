// Planted violation (tests/layering): tokenizers sits beside nn, not above it.
#include "core/error.h"
#  include "nn/attention.h"
