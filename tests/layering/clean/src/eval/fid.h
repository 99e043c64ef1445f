#pragma once
#include "data/emoji.h"
#include "pipelines/sd.h"
