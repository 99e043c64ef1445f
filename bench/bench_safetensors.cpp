// safetensors load benchmark. Writes a ~1 GB file of f32 tensors (size from --mb), then, with
// the file evicted from the page cache before each cold measurement, reports JSON:
//   cat_mb_s             sequential read() of the whole file (what `cat > /dev/null` achieves)
//   first_tensor_ms      open + validate header + first tensor's first page (cold)
//   full_read_mb_s       every tensor loaded and every element summed (cold)
//   warm_full_read_mb_s  the same with the file in the page cache
//   rss_anon_mb / rss_file_mb at the end of the cold full read, file still mapped: the data is
//                        file-backed page cache (reclaimable), anonymous memory stays small
//   peak_rss_mb          ru_maxrss of the whole run (counts mapped file pages too)
// Usage: bench_safetensors [--mb 1024] [--dir /tmp] [--keep]
#include "args.h"
#include "measure.h"
#include "io/safetensors.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sys/resource.h>
#include <unistd.h>

namespace {

using genvis::bench::now_s;
using genvis::bench::status_mb;

void evict(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}


double cat_throughput(const std::string& path, uint64_t size) {
  evict(path);
  const int fd = ::open(path.c_str(), O_RDONLY);
  std::vector<char> buf(1 << 20);
  const double t0 = now_s();
  while (::read(fd, buf.data(), buf.size()) > 0) {
  }
  const double dt = now_s() - t0;
  ::close(fd);
  return size / 1048576.0 / dt;
}

struct ReadResult {
  double mb_s, checksum, rss_anon_mb, rss_file_mb;
};

// Loads and sums every tensor; memory is read while the file is still mapped.
ReadResult full_read(const std::string& path, uint64_t size) {
  const double t0 = now_s();
  auto r = genvis::io::SafetensorsReader::open(path);
  double checksum = 0;
  for (const auto& t : r->tensors()) checksum += r->load(t.name).sum().item<double>();
  const double mb_s = size / 1048576.0 / (now_s() - t0);
  return {mb_s, checksum, status_mb("RssAnon:"), status_mb("RssFile:")};
}

}  // namespace

int main(int argc, char** argv) {
  int64_t mb = 1024;
  std::string dir = "/tmp";
  bool keep = false;
  genvis::bench::Args args(argc, argv, "bench_safetensors", "[--mb N] [--dir DIR] [--keep]");
  while (args.next()) {
    if (args.is("--mb")) mb = args.count();
    else if (args.is("--dir")) dir = args.text();
    else if (args.is("--keep")) keep = true;
    else args.unknown();
  }
  if (mb < 1) args.fail("--mb must be >= 1");
  at::set_num_threads(1);
  const double anon_baseline = status_mb("RssAnon:");
  const std::string path = dir + "/genvis-bench-" + std::to_string(::getpid()) + ".safetensors";
  constexpr int64_t kTensorMB = 16;
  const int64_t count = std::max<int64_t>(1, mb / kTensorMB);
  std::vector<genvis::io::TensorInfo> layout(count);
  for (int64_t i = 0; i < count; ++i) {
    layout[i].name = "layers." + std::to_string(i) + ".weight";
    layout[i].dtype = genvis::io::DType::F32;
    layout[i].shape = {kTensorMB * 1024, 256};
  }
  const double w0 = now_s();
  genvis::io::write_safetensors(path, layout, {{"format", "pt"}}, [&](size_t i) {
    return at::full({kTensorMB * 1024, 256}, static_cast<float>(i % 7) * 0.5f);
  });
  const double write_s = now_s() - w0;
  const uint64_t size = static_cast<uint64_t>(std::ifstream(path, std::ios::binary | std::ios::ate).tellg());

  const double cat_mb_s = cat_throughput(path, size);

  evict(path);
  const double f0 = now_s();
  double first_value = 0;
  {
    auto r = genvis::io::SafetensorsReader::open(path);
    first_value = r->load(r->tensors().front().name)[0][0].item<float>();
  }
  const double first_ms = (now_s() - f0) * 1000;

  evict(path);
  const ReadResult cold = full_read(path, size);
  const ReadResult warm = full_read(path, size);

  if (!keep) std::remove(path.c_str());

  nlohmann::ordered_json j;
  j["benchmark"] = "safetensors_load";
  j["file_mb"] = size / 1048576.0;
  j["tensors"] = count;
  j["write_mb_s"] = size / 1048576.0 / write_s;
  j["cat_mb_s"] = cat_mb_s;
  j["first_tensor_ms"] = first_ms;
  j["full_read_mb_s"] = cold.mb_s;
  j["full_read_vs_cat"] = cold.mb_s / cat_mb_s;
  j["warm_full_read_mb_s"] = warm.mb_s;
  j["rss_anon_baseline_mb"] = anon_baseline;
  j["rss_anon_mb"] = cold.rss_anon_mb;
  j["rss_file_mb"] = cold.rss_file_mb;
  j["peak_rss_mb"] = genvis::bench::process_peak_rss_mb();
  j["checksum"] = cold.checksum + first_value;
  std::printf("%s\n", j.dump(2).c_str());
  return 0;
}
