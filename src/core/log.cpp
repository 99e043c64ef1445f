#include "core/log.h"

#include "core/error.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace genvis {
namespace {

LogLevel initial_level() {
  if (const char* env = std::getenv("GENVIS_LOG")) {
    try {
      return parse_log_level(env);
    } catch (const UsageError&) {
    }
  }
  return LogLevel::Info;
}

std::atomic<LogLevel>& level_ref() {
  static std::atomic<LogLevel> level{initial_level()};
  return level;
}

}  // namespace

void set_log_level(LogLevel level) { level_ref() = level; }
LogLevel log_level() { return level_ref(); }

LogLevel parse_log_level(std::string_view text) {
  if (text == "debug") return LogLevel::Debug;
  if (text == "info") return LogLevel::Info;
  if (text == "warn" || text == "warning") return LogLevel::Warn;
  if (text == "error") return LogLevel::Error;
  if (text == "silent" || text == "quiet") return LogLevel::Silent;
  throw UsageError("unknown log level '" + std::string(text) + "' (expected debug, info, warn, error, silent)");
}

void log(LogLevel level, std::string_view message) {
  if (level < log_level() || level == LogLevel::Silent) return;
  static std::mutex mutex;
  static const char* const kPrefix[] = {"debug: ", "", "warning: ", "error: "};
  std::lock_guard<std::mutex> lock(mutex);
  std::fprintf(stderr, "%s%.*s\n", kPrefix[static_cast<int>(level)], static_cast<int>(message.size()), message.data());
}

}  // namespace genvis
