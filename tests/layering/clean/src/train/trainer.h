#pragma once
#include "eval/fid.h"
