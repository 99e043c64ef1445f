// The vanished-gradient watch: the reference from a group's early turns, the warning once after
// enough low turns in a row, a recovery resetting the count, groups kept apart.
#include "train/gradient_watch.h"

#include <cmath>
#include <gtest/gtest.h>

namespace genvis::train {
namespace {

TEST(GradientWatch, WarnsOnceWhenAGroupsGradientStaysTiny) {
  GradientWatch watch({.early_turns = 5, .fraction = 1e-3, .consecutive = 4});
  for (double norm : {0.5, 2.0, 1.0, 0.1, 0.3}) EXPECT_FALSE(watch.observe("generator", norm));  // reference 2
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(watch.observe("discriminator", 3.0));
  // Three low turns (under 2e-3), then a recovery: no warning, the count starts again.
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(watch.observe("generator", 1e-3));
  EXPECT_FALSE(watch.observe("generator", 2.5e-3));
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(watch.observe("generator", 1e-7));
  EXPECT_FALSE(watch.observe("generator", NAN));  // not counted, does not reset
  const auto warning = watch.observe("generator", 1e-7);
  ASSERT_TRUE(warning);
  EXPECT_NE(warning->find("group 'generator'"), std::string::npos) << *warning;
  EXPECT_NE(warning->find("4 steps"), std::string::npos) << *warning;
  EXPECT_NE(warning->find("vanished"), std::string::npos) << *warning;
  EXPECT_FALSE(watch.observe("generator", 1e-7));  // once
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(watch.observe("discriminator", 1.0));  // 1/3 of its reference: fine
}

TEST(GradientWatch, EarlyTurnsNeverWarn) {
  // A group born with tiny gradients sets a tiny reference: nothing vanished relative to it.
  GradientWatch watch({.early_turns = 3, .fraction = 1e-3, .consecutive = 2});
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(watch.observe("model", 1e-9));
}

}  // namespace
}  // namespace genvis::train
