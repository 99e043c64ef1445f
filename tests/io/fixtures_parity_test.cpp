// Every tensor of every fixture file, as loaded by genvis, holds exactly the bytes the reference
// writer put at its offsets (read here independently with plain file I/O and the raw header).
#include "io/safetensors.h"
#include "support/test_support.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace genvis::io {
namespace {

namespace fs = std::filesystem;

TEST(FixturesParity, EveryTensorHasTheReferenceBytes) {
  GENVIS_REQUIRE_FIXTURES();
  size_t files = 0, tensors = 0;
  for (const auto& e : fs::recursive_directory_iterator(test::fixtures_dir())) {
    if (!e.is_regular_file() || e.path().extension() != ".safetensors") continue;
    const std::string path = e.path().string();
    ++files;
    std::ifstream in(path, std::ios::binary);
    uint64_t n = 0;
    in.read(reinterpret_cast<char*>(&n), 8);
    std::string header(n, '\0');
    in.read(header.data(), static_cast<std::streamsize>(n));
    const auto raw = nlohmann::json::parse(header);

    auto reader = SafetensorsReader::open(path);
    for (const auto& [name, entry] : raw.items()) {
      if (name == "__metadata__") continue;
      ++tensors;
      const uint64_t begin = entry["data_offsets"][0], end = entry["data_offsets"][1];
      std::string expected(end - begin, '\0');
      in.seekg(static_cast<std::streamoff>(8 + n + begin));
      in.read(expected.data(), static_cast<std::streamsize>(expected.size()));
      const at::Tensor t = reader->load(name).contiguous();
      ASSERT_EQ(static_cast<uint64_t>(t.numel() * t.element_size()), expected.size()) << path << " " << name;
      EXPECT_EQ(std::memcmp(t.data_ptr(), expected.data(), expected.size()), 0) << path << " " << name;
      if (entry["dtype"] == "F16") {
        // Cast on load: f16 -> f32 is exact.
        const at::Tensor f = reader->load(name, at::kFloat);
        EXPECT_EQ(f.scalar_type(), at::kFloat);
        EXPECT_TRUE(at::equal(f.to(at::kHalf), t)) << path << " " << name;
      }
    }
  }
  EXPECT_GE(files, 40u);
  EXPECT_GE(tensors, 2000u);
}

}  // namespace
}  // namespace genvis::io
