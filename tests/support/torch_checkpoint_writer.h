// Writing PyTorch checkpoints in tests, as torch.save does (a zip archive: archive/data.pkl, a
// pickle of the state dict over storages archive/data/<key>, and archive/version), both
// well-formed ones of real tensors and hand-made (hostile) ones from pickle pieces.
//
//   test::save_torch_checkpoint(dir.file("vae.pth"), {{"conv1.weight", w}, {"conv1.bias", b}});
//   write_zip(path, {{"archive/data.pkl", state_dict_pickle({{"w", "FloatStorage", "0", 4, 0, {2, 2}, {2, 1}}})},
//                    {"archive/data/0", floats({1, 2, 3, 4})}});
#pragma once
#include <ATen/ATen.h>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace genvis::test {

// Pickle protocol 2 pieces: little-endian integers, a short unicode string, a global, an int64,
// a tuple of int64.
std::string le(uint64_t v, int n);
std::string str(std::string_view s);
std::string global(std::string_view module, std::string_view name);
std::string integer(int64_t v);
std::string tuple(const std::vector<int64_t>& v);

struct FakeTensor {
  std::string name, storage_class, key;
  int64_t numel, offset;
  std::vector<int64_t> size, stride;
};

// What torch.save writes for an OrderedDict of tensors (protocol 2, without memo opcodes).
std::string state_dict_pickle(const std::vector<FakeTensor>& tensors);

struct Entry {
  std::string name, data;
  bool deflate = false;
};

// A zip archive of the entries (stored, or deflated). Fails the test on a libzip error.
void write_zip(const std::string& path, const std::vector<Entry>& entries);

std::string floats(const std::vector<float>& v);

// A torch.save'd state dict of `tensors` (contiguous, each over a storage of its own; F64, F32,
// F16, BF16, I64, I32, U8, BOOL), as the Wan release's .pth files are written.
void save_torch_checkpoint(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors);

}  // namespace genvis::test
