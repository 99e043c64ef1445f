#include "cli.h"

int main(int argc, char** argv) { return genvis::cli::run(argc, argv); }
