#pragma once
#include "models/clip_text/model.h"
#include "schedulers/euler.h"
