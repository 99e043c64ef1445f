// Progress bar for long work: "label  12/50 [=====>    ] 3.41 it/s ETA 0:11".
// Drawn on stderr only when stderr is a terminal and not quiet (set_progress_quiet / --quiet).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace genvis {

void set_progress_quiet(bool quiet);
// True when a bar would be drawn: stderr is a terminal and output is not quiet.
bool progress_visible();

class Progress {
public:
  Progress(std::string label, int64_t total);
  // Forces drawing on or off regardless of the terminal check (tests, --progress=always).
  Progress(std::string label, int64_t total, bool visible);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void update(int64_t step);   // absolute step count
  void advance(int64_t n = 1); // relative
  void finish();               // draws the final state and a newline (idempotent)

  int64_t step() const { return step_; }
  double rate() const;          // steps per second so far
  double eta_seconds() const;   // < 0 when unknown
  // The line that would be drawn now, without terminal control codes.
  std::string render(int width = 80) const;

private:
  void draw(bool force);
  std::string label_;
  int64_t total_, step_ = 0;
  bool visible_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1:02:03" / "2:03".
std::string format_duration(double seconds);

}  // namespace genvis
