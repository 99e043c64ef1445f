#include "core/progress.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <unistd.h>

namespace genvis {
namespace {
std::atomic<bool> g_quiet{false};
}

void set_progress_quiet(bool quiet) { g_quiet = quiet; }
bool progress_visible() { return !g_quiet && ::isatty(STDERR_FILENO) == 1; }

Progress::Progress(std::string label, int64_t total) : Progress(std::move(label), total, progress_visible()) {}

Progress::Progress(std::string label, int64_t total, bool visible)
    : label_(std::move(label)), total_(std::max<int64_t>(total, 0)), visible_(visible),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && visible_ && step_ > 0) finish();
}

void Progress::update(int64_t step) {
  step_ = std::clamp<int64_t>(step, 0, total_ > 0 ? total_ : step);
  draw(false);
}

void Progress::advance(int64_t n) { update(step_ + n); }

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!visible_) return;
  draw(true);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

double Progress::rate() const {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return elapsed > 0 ? step_ / elapsed : 0.0;
}

double Progress::eta_seconds() const {
  const double r = rate();
  if (step_ == 0 || r <= 0 || total_ == 0) return -1;
  return (total_ - step_) / r;
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  const auto s = static_cast<long long>(std::llround(seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

std::string Progress::render(int width) const {
  char counts[64], tail[64];
  std::snprintf(counts, sizeof counts, " %lld/%lld ", static_cast<long long>(step_), static_cast<long long>(total_));
  const double r = rate();
  if (r >= 1.0 || r == 0.0)
    std::snprintf(tail, sizeof tail, " %.2f it/s ETA %s", r, format_duration(eta_seconds()).c_str());
  else
    std::snprintf(tail, sizeof tail, " %.2f s/it ETA %s", 1.0 / r, format_duration(eta_seconds()).c_str());
  std::string line = label_ + counts;
  const int bar = std::max(10, width - static_cast<int>(line.size() + std::string(tail).size()) - 2);
  const int filled = total_ > 0 ? static_cast<int>(bar * step_ / total_) : 0;
  line += '[';
  for (int i = 0; i < bar; ++i) line += i < filled ? '=' : (i == filled ? '>' : ' ');
  line += ']';
  return line + tail;
}

void Progress::draw(bool force) {
  if (!visible_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && step_ != total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  std::fprintf(stderr, "\r%s\x1b[K", render().c_str());
  std::fflush(stderr);
}

}  // namespace genvis
