#include "core/config_reader.h"
#include "core/error.h"
#include "support/test_support.h"

#include <fstream>

namespace genvis::config {
namespace {

using json = nlohmann::json;

bool has(const Problems& problems, const std::string& part) {
  for (const auto& p : problems)
    if (p.find(part) != std::string::npos) return true;
  return false;
}

TEST(ConfigReader, ReportsEveryUnknownAndMissingKeyWithItsPath) {
  Problems p;
  const json j = {{"steps", 1}, {"colour", "red"}, {"size", 3}, {"_comment", "metadata is allowed"}};
  EXPECT_TRUE(check_keys(j, "train", {"steps", "lr", "seed"}, {"size"}, p));
  EXPECT_EQ(p.size(), 3u) << describe(p);
  EXPECT_TRUE(has(p, "unknown key train.colour"));
  EXPECT_TRUE(has(p, "missing key train.lr"));
  EXPECT_TRUE(has(p, "missing key train.seed"));
  EXPECT_FALSE(has(p, "_comment"));

  Problems root;
  check_keys(j, "", {}, {"steps"}, root);
  EXPECT_TRUE(has(root, "unknown key colour")) << describe(root);
  EXPECT_TRUE(has(root, "unknown key size"));

  Problems not_object;
  EXPECT_FALSE(check_keys(json::array({1, 2}), "vision_config", {}, {}, not_object));
  ASSERT_EQ(not_object.size(), 1u);
  EXPECT_NE(not_object[0].find("vision_config must be a JSON object"), std::string::npos) << not_object[0];
}

TEST(ConfigReader, TypedReadsKeepDefaultsAndNameWrongTypes) {
  const json j = json::parse(R"({"n": 3, "x": 2, "f": 1.5, "s": "a", "b": true, "list": [1, 2], "names": ["a"],
                                  "neg": -1, "null": null, "bad_n": 1.5, "bad_list": [1, "x"], "bad_b": 1})");
  Problems p;
  int64_t n = 0;
  double x = 0, f = 0;
  std::string s;
  bool b = false;
  std::vector<int64_t> list;
  std::vector<std::string> names;
  uint64_t neg = 7;
  int64_t null_keeps = 42, bad_n = 5;
  std::vector<int64_t> bad_list = {9};
  bool bad_b = false;
  EXPECT_TRUE(read(j, "", "n", n, p));
  EXPECT_TRUE(read(j, "", "x", x, p));  // an integer is a number
  EXPECT_TRUE(read(j, "", "f", f, p));
  EXPECT_TRUE(read(j, "", "s", s, p));
  EXPECT_TRUE(read(j, "", "b", b, p));
  EXPECT_TRUE(read(j, "", "list", list, p));
  EXPECT_TRUE(read(j, "", "names", names, p));
  EXPECT_TRUE(p.empty()) << describe(p);
  EXPECT_EQ(n, 3);
  EXPECT_EQ(x, 2.0);
  EXPECT_EQ(f, 1.5);
  EXPECT_EQ(s, "a");
  EXPECT_TRUE(b);
  EXPECT_EQ(list, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(names, std::vector<std::string>{"a"});

  EXPECT_FALSE(read(j, "", "null", null_keeps, p));
  EXPECT_FALSE(read(j, "", "absent", null_keeps, p));
  EXPECT_EQ(null_keeps, 42);
  EXPECT_TRUE(p.empty());

  EXPECT_FALSE(read(j, "cfg", "neg", neg, p));
  EXPECT_FALSE(read(j, "cfg", "bad_n", bad_n, p));
  EXPECT_FALSE(read(j, "cfg", "bad_list", bad_list, p));
  EXPECT_FALSE(read(j, "cfg", "bad_b", bad_b, p));
  EXPECT_EQ(p.size(), 4u) << describe(p);
  EXPECT_TRUE(has(p, "cfg.neg has the wrong type: expected a non-negative integer, got -1"));
  EXPECT_TRUE(has(p, "cfg.bad_n has the wrong type: expected an integer, got 1.5"));
  EXPECT_TRUE(has(p, "cfg.bad_list has the wrong type: expected a list of integers"));
  EXPECT_TRUE(has(p, "cfg.bad_b has the wrong type: expected true or false, got 1"));
  EXPECT_EQ(neg, 7u);
  EXPECT_EQ(bad_n, 5);
  EXPECT_EQ(bad_list, std::vector<int64_t>{9});
  EXPECT_EQ(describe(p).rfind("4 problem(s): ", 0), 0u) << describe(p);
}

TEST(ConfigReader, OptionalFieldsAndPerBlockLists) {
  const json j = json::parse(R"({"dim": 8, "none": null, "one": 2, "many": [1, 2, 3], "bad": "x"})");
  Problems p;
  std::optional<int64_t> dim, none = 5;
  EXPECT_TRUE(read(j, "", "dim", dim, p));
  EXPECT_TRUE(read(j, "", "none", none, p));
  EXPECT_EQ(dim, 8);
  EXPECT_FALSE(none.has_value());
  std::vector<int64_t> one, many, bad = {4};
  EXPECT_TRUE(read_int_or_list(j, "", "one", one, p));
  EXPECT_TRUE(read_int_or_list(j, "", "many", many, p));
  EXPECT_EQ(one, std::vector<int64_t>{2});
  EXPECT_EQ(many, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(p.empty());
  EXPECT_FALSE(read_int_or_list(j, "", "bad", bad, p));
  EXPECT_TRUE(has(p, "bad has the wrong type: expected an integer or a list of integers"));
  EXPECT_EQ(bad, std::vector<int64_t>{4});
}

TEST(ConfigReader, FilesThatAreMissingOrNotJsonAreLoadErrors) {
  test::TempDir dir;
  EXPECT_THROW(read_file(dir.file("absent.json")), LoadError);
  std::ofstream(dir.file("broken.json")) << "{\"a\": ";
  try {
    read_file(dir.file("broken.json"));
    FAIL() << "accepted";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("broken.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
  std::ofstream(dir.file("big.json")) << "[" << std::string(2000, ' ') << "]";
  EXPECT_THROW(read_file(dir.file("big.json"), 1000), Error);
  std::ofstream(dir.file("ok.json")) << R"({"a": [1, 2]})";
  EXPECT_EQ(read_file(dir.file("ok.json")).at("a").size(), 2u);
}

}  // namespace
}  // namespace genvis::config
