// genvis command line. Exit codes: 0 success, 1 runtime error, 2 usage error, 3 model/config
// load error. Errors are one line on stderr: "genvis: error: ...".
#include "cli.h"
#include "commands.h"

#include "core/device.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/threads.h"
#include "core/torch_compat.h"
#include "genvis/version.h"

#include <c10/util/Exception.h>
#include <cstdio>
#include <iostream>
#include <new>

namespace {

std::string version_line() {
  std::string s = std::string("genvis ") + GENVIS_VERSION + " (libtorch " + genvis::compat::torch_version();
  const int gpus = genvis::compat::cuda_device_count();
  s += gpus > 0 ? ", CUDA devices: " + std::to_string(gpus) : std::string(at::hasCUDA() ? ", CUDA: no device" : ", CPU");
  return s + ")";
}

// c10 messages carry a C++ backtrace after the first line; keep the first line only.
std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

int fail(int code, const std::string& message) {
  std::fprintf(stderr, "genvis: error: %s\n", first_line(message).c_str());
  return code;
}

}  // namespace

namespace genvis::cli {

namespace {
std::vector<std::string> g_invocation;
}

const std::vector<std::string>& invocation() { return g_invocation; }

int run(int argc, char** argv) {
  g_invocation.assign(argv, argv + argc);
  CLI::App app{"genvis: text-to-image and text-to-video generation and training, in C++.", "genvis"};
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", version_line());
  app.failure_message(CLI::FailureMessage::simple);

  bool quiet = false;
  int verbosity = 0;
  int threads = 0;
  std::string log_level;
  app.add_flag("-q,--quiet", quiet, "No progress bars or informational messages");
  app.add_flag("-v,--verbose", verbosity, "More messages (-v: info, -vv: debug)");
  app.add_option("--log-level", log_level, "debug, info, warn, error or silent (overrides -q/-v)");
  app.add_option("--threads", threads, "CPU threads for tensor work (0 = automatic)")->check(CLI::Range(0, 4096));

  const std::vector<genvis::cli::Command> commands = {
      genvis::cli::add_info_command(app),
      genvis::cli::add_convert_command(app),
      genvis::cli::add_tokenize_command(app),
      genvis::cli::add_generate_command(app),
      genvis::cli::add_dataset_command(app),
      genvis::cli::add_train_command(app),
      genvis::cli::add_eval_command(app),
      genvis::cli::add_serve_command(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "genvis: error: %s\nRun 'genvis --help' for usage.\n", e.what());
    return 2;
  }

  if (app.get_subcommands().empty()) {
    std::fprintf(stderr, "genvis: error: a command is required (info, convert, tokenize, generate)\nRun 'genvis --help' for usage.\n");
    return 2;
  }

  try {
    using genvis::LogLevel;
    genvis::set_log_level(quiet ? LogLevel::Warn : verbosity >= 2 ? LogLevel::Debug : LogLevel::Info);
    if (!log_level.empty()) genvis::set_log_level(genvis::parse_log_level(log_level));
    genvis::set_progress_quiet(quiet);
    genvis::set_num_threads(threads);
    for (const auto& command : commands)
      if (command.app->parsed()) command.run();
    return 0;
  } catch (const genvis::Error& e) {
    return fail(e.exit_code(), e.what());
  } catch (const c10::Error& e) {
    return fail(1, e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    return fail(1, "out of memory");
  } catch (const std::exception& e) {
    return fail(1, e.what());
  }
}

}  // namespace genvis::cli
