#include "flag_names.h"

#include <cctype>

namespace genvis::cli {

std::string with_flag_names(std::string message, const CLI::App* command,
                            const std::vector<std::pair<std::string, std::string>>& renames) {
  std::string out;
  size_t i = 0;
  while (i < message.size()) {
    const size_t open = message.find('\'', i);
    if (open == std::string::npos) break;
    size_t close = open + 1;
    while (close < message.size() &&
           (std::isalnum(static_cast<unsigned char>(message[close])) || message[close] == '_' || message[close] == '.' ||
            message[close] == '/'))
      ++close;
    const std::string field = message.substr(open + 1, close - open - 1);
    std::string flag;
    if (close < message.size() && message[close] == '\'' && !field.empty()) {
      for (const auto& [name, replacement] : renames)
        if (name == field) flag = replacement;
      if (flag.empty() && command) {
        std::string dashed = "--" + field;
        for (auto& c : dashed)
          if (c == '_') c = '-';
        if (command->get_option_no_throw(dashed)) flag = dashed;
      }
    }
    if (flag.empty()) {
      out += message.substr(i, open + 1 - i);
      i = open + 1;
    } else {
      out += message.substr(i, open - i) + flag;
      i = close + 1;
    }
  }
  return out + message.substr(i);
}

}  // namespace genvis::cli
