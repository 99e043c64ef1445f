// The training recipe table: built-in entries, unknown names, registration, running by name.
#include "core/error.h"
#include "train/recipes.h"
#include "support/test_support.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace genvis::train {
namespace {

std::string error_of(const std::string& name) {
  try {
    find_recipe(name);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(RecipeTable, ListsTheConfigFileRecipesInOrder) {
  const std::vector<std::string> builtin = {"ldm",   "contrastive", "damsm",      "dfgan", "attngan",
                                            "dvae",  "dalle",       "classifier", "video", "video-classifier"};
  const auto names = recipe_names();
  ASSERT_GE(names.size(), builtin.size());
  // Registered recipes (the tests below add some) follow the built-in ones.
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(builtin.size())), builtin);
  const auto table = recipes();
  ASSERT_EQ(table.size(), names.size());
  for (size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(table[i].name, names[i]);
    EXPECT_TRUE(table[i].run) << table[i].name;
  }
  for (size_t i = 0; i < builtin.size(); ++i) {
    EXPECT_EQ(find_recipe(builtin[i]).name, builtin[i]);
    // The CLI's help texts.
    EXPECT_FALSE(table[i].description.empty()) << table[i].name;
    EXPECT_FALSE(table[i].resume_help.empty()) << table[i].name;
    // The example config ships with the repository.
    EXPECT_TRUE(std::filesystem::exists(std::string(GENVIS_SOURCE_DIR) + "/" + table[i].example_config))
        << table[i].example_config;
  }
}

TEST(RecipeTable, UnknownNameIsAUsageErrorListingTheKnownOnes) {
  const std::string message = error_of("dreambooth");
  std::string known;
  for (const auto& n : recipe_names()) known += (known.empty() ? "" : ", ") + n;
  EXPECT_EQ(message, "unknown training recipe 'dreambooth' (known: " + known + ")");
  EXPECT_NE(message.find("ldm, contrastive, damsm, dfgan, attngan, dvae, dalle, classifier, video, video-classifier"), std::string::npos) << message;
}

TEST(RecipeTable, BuiltInRecipeReadsItsConfigFile) {
  // The config is read (and refused, naming the file) before anything is trained or written.
  test::TempDir dir;
  for (const auto& name : {"ldm", "contrastive", "damsm", "dfgan", "attngan", "dvae", "dalle", "classifier", "video",
                           "video-classifier"}) {
    const std::string missing = dir.file(std::string(name) + "-missing.json");
    try {
      find_recipe(name).run(missing, {.out_dir = dir.file("out")});
      ADD_FAILURE() << name << ": a missing config ran";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << name << ": " << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(dir.file("out"))) << name;
  }
}

TEST(RecipeTable, RegisteredRecipeRunsThroughFindRecipe) {
  struct Seen {
    std::string config;
    RecipeRunOptions options;
  };
  const auto seen = std::make_shared<Seen>();  // the table outlives this test
  register_recipe({.name = "recipes-test-echo",
                   .description = "records its arguments",
                   .example_config = "configs/none.json",
                   .resume_help = "Nothing to continue",
                   .run = [seen](const std::string& config_path, const RecipeRunOptions& options) {
                     seen->config = config_path;
                     seen->options = options;
                     return RecipeRunResult{.output = options.out_dir + "/model", .interrupted = options.resume};
                   }});
  const auto names = recipe_names();
  EXPECT_EQ(std::count(names.begin(), names.end(), "recipes-test-echo"), 1);
  const Recipe recipe = find_recipe("recipes-test-echo");
  EXPECT_EQ(recipe.description, "records its arguments");
  const RecipeRunResult r = recipe.run("echo.json", {.out_dir = "runs/echo", .resume = true});
  EXPECT_EQ(seen->config, "echo.json");
  EXPECT_EQ(seen->options.out_dir, "runs/echo");
  EXPECT_TRUE(seen->options.resume);
  EXPECT_EQ(r.output, "runs/echo/model");
  EXPECT_TRUE(r.interrupted);
  EXPECT_NE(error_of("nope").find(", recipes-test-echo"), std::string::npos);
}

TEST(RecipeTable, DuplicateAndIncompleteRegistrationsAreRefused) {
  const auto run = [](const std::string&, const RecipeRunOptions&) { return RecipeRunResult{}; };
  EXPECT_THROW(register_recipe({.name = "ldm", .run = run}), UsageError);
  register_recipe({.name = "recipes-test-once", .run = run});
  EXPECT_THROW(register_recipe({.name = "recipes-test-once", .run = run}), UsageError);
  EXPECT_THROW(register_recipe({.name = "", .run = run}), UsageError);
  EXPECT_THROW(register_recipe({.name = "recipes-test-no-run"}), UsageError);
  const auto names = recipe_names();
  EXPECT_EQ(std::count(names.begin(), names.end(), "recipes-test-once"), 1);
  EXPECT_EQ(std::count(names.begin(), names.end(), "ldm"), 1);
  EXPECT_EQ(std::count(names.begin(), names.end(), "recipes-test-no-run"), 0);
}

}  // namespace
}  // namespace genvis::train
