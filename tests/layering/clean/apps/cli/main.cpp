#include <CLI/CLI.hpp>
#include "api/generate.h"
#include "commands.h"
#include "genvis/genvis.h"
#include "pipelines/sd.h"
