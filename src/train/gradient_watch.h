// Notices a gradient that has vanished: a group whose gradient norm stays under a tiny fraction of
// its early size for many steps in a row (a GAN generator whose tanh output saturated, a dead
// network) learns nothing more, whatever its loss says. The trainer feeds every turn and logs the
// message once per group; the run goes on (the user decides).
//
//   GradientWatch watch;
//   if (auto warning = watch.observe("generator", 1.5e-7)) log_warn(*warning);
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace genvis::train {

class GradientWatch {
public:
  struct Options {
    int64_t early_turns = 50;   // the reference: the largest norm over a group's first turns
    double fraction = 1e-4;     // vanished: under fraction * reference ...
    int64_t consecutive = 20;   // ... for this many turns in a row
  };
  GradientWatch() = default;
  explicit GradientWatch(Options options) : options_(options) {}

  // One turn of `group` with gradient norm `norm` (before clipping). Returns the warning the first
  // time the group's gradient counts as vanished.
  std::optional<std::string> observe(const std::string& group, double norm);

private:
  struct State {
    int64_t turns = 0, low = 0;
    double reference = 0;
    bool warned = false;
  };
  Options options_;
  std::map<std::string, State> groups_;
};

}  // namespace genvis::train
