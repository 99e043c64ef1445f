// Legal (tests/layering): apps may include anything in src and include.
#include <CLI/CLI.hpp>
#include "commands.h"
#include "genvis/planted.h"
#include "pipelines/stable_diffusion.h"
