// The whole command line as a function, so that a program (or a test that registers its own
// pipeline family) runs `genvis ...` in-process: apps/cli/main.cpp is only `return run(argc, argv);`.
#pragma once

namespace genvis::cli {

// Parses and runs one command; returns the exit code (0, 1 runtime, 2 usage, 3 load error),
// having printed any error as one line on stderr.
int run(int argc, char** argv);

}  // namespace genvis::cli
