// Internal to src/data: the counter-based random stream every procedural dataset draws from.
// splitmix64 seeded from (seed, stream tag, index): the same triple gives the same stream on every
// machine, so a sample is a pure function of its options and index.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

namespace genvis::data {

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

class SplitMix {
public:
  SplitMix(uint64_t seed, uint64_t tag, uint64_t index)
      : state_(mix64(mix64(seed + 0x9E3779B97F4A7C15ULL) ^ mix64(tag * 0xD1B54A32D192ED03ULL + 1) ^
                     mix64(index + 0x632BE59BD9B4E019ULL))) {}
  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    return mix64(state_);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double range(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int below(int n) { return static_cast<int>(uniform() * n); }
  bool chance(double p) { return uniform() < p; }
  template <class T, size_t N>
  const T& pick(const std::array<T, N>& items) {
    return items[static_cast<size_t>(below(static_cast<int>(N)))];
  }

private:
  uint64_t state_;
};

}  // namespace genvis::data
