#include "train/gradient_watch.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace genvis::train {

std::optional<std::string> GradientWatch::observe(const std::string& group, double norm) {
  State& s = groups_[group];
  ++s.turns;
  if (!std::isfinite(norm)) return std::nullopt;  // the trainer stops on non-finite losses itself
  if (s.turns <= options_.early_turns) {
    s.reference = std::max(s.reference, norm);
    return std::nullopt;
  }
  s.low = norm < options_.fraction * s.reference ? s.low + 1 : 0;
  if (s.warned || s.low < options_.consecutive) return std::nullopt;
  s.warned = true;
  char text[320];
  std::snprintf(text, sizeof text,
                "group '%s': gradient norm %.3g for %lld steps in a row, under %.0e of its early %.3g: its "
                "gradient has vanished and it no longer learns (a saturated output or dead units; see "
                "docs/results.md); the run goes on",
                group.c_str(), norm, static_cast<long long>(s.low), options_.fraction, s.reference);
  return std::string(text);
}

}  // namespace genvis::train
