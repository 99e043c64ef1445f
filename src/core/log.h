// Leveled logging to stderr. Level from --verbose/--quiet (CLI) or GENVIS_LOG=debug|info|warn|error.
#pragma once
#include <string>
#include <string_view>

namespace genvis {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Silent = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
// Parses "debug", "info", "warn", "error", "silent"; throws UsageError otherwise.
LogLevel parse_log_level(std::string_view text);

void log(LogLevel level, std::string_view message);
inline void log_debug(std::string_view m) { log(LogLevel::Debug, m); }
inline void log_info(std::string_view m) { log(LogLevel::Info, m); }
inline void log_warn(std::string_view m) { log(LogLevel::Warn, m); }
inline void log_error(std::string_view m) { log(LogLevel::Error, m); }

}  // namespace genvis
