#pragma once
#include <memory>
#include "genvis/types.hpp"
#include "genvis/version.h"
