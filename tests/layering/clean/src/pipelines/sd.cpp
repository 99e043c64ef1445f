#  include "pipelines/sd.h"
#include "core/error.h"
