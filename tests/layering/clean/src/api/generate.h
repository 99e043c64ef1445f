#pragma once
#include "genvis/genvis.h"
#include "train/trainer.h"
