// The shipped shapes model (models/genvis-shapes-32) through the evaluation as its model card
// documents it: the shapes pixel scorer is the judge (no option needed), the model loads from its
// f16 files, and its images follow their captions' colours far above the control (the same
// images scored against other captions' scenes). 16 held-out captions: a quick check, not the
// card's 100-caption measurement.
#include "eval/eval_run.h"

#include <filesystem>
#include <gtest/gtest.h>

namespace genvis::eval {
namespace {

TEST(ShippedShapesModel, HeldOutCaptionsScoreWithoutAJudgeOption) {
  const std::string model = std::string(GENVIS_SOURCE_DIR) + "/models/genvis-shapes-32";
  ASSERT_TRUE(std::filesystem::exists(model + "/model_index.json")) << model;
  EvalRun run;
  run.model = model;
  run.dataset = "shapes";
  run.split = "heldout";
  run.num = 16;
  run.no_cache = true;
  const EvalReport report = run_evaluation(run);
  const auto& m = report.result["metrics"];
  const double colour = m["shapes_colour_accuracy"].get<double>(), control = m["shapes_colour_chance"].get<double>();
  EXPECT_GE(colour, 0.6) << m.dump();
  EXPECT_GT(colour, control + 0.3) << m.dump();
  EXPECT_GE(m["shapes_colour_shape_accuracy"].get<double>(), 0.4) << m.dump();
  EXPECT_FALSE(m.contains("FID")) << "no feature judge was given: " << m.dump();
}

}  // namespace
}  // namespace genvis::eval
