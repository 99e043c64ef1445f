// A restricted unpickler for PyTorch checkpoints: a pickle VM that builds a tree of plain values
// and tensor references, and never executes anything from the file.
//
//   PickleDocument doc = unpickle(bytes.data(), bytes.size(), "model.ckpt");
//   CheckpointIndex index = index_checkpoint(doc, "model.ckpt");
//   for (const auto& t : index.tensors)  // "model.diffusion_model.out.2.weight" -> storage "12", F16
//     std::cout << t.name << " -> " << t.ref.storage.key << "\n";
//
// Globals are an allowlist: collections.OrderedDict, torch._utils._rebuild_tensor{,_v2},
// _rebuild_parameter{,_with_state}, the typed torch.*Storage classes, torch dtypes, torch.Size,
// set/frozenset, and a few inert data classes seen in real Stable Diffusion checkpoints (kept as
// opaque objects that hold nothing). Any other global (os.system, builtins.eval, ...) is a
// LoadError that names it. Persistent ids ('storage', type, key, location, numel[, view]) become
// storage references. No libtorch here: this file is fuzzed on its own (fuzz/unpickler_fuzz.cpp).
#pragma once
#include "io/dtype.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace genvis::io {

// A typed storage as named by a persistent id. Counts are elements of `dtype`.
struct StorageRef {
  std::string key;          // zip: entry "<archive>/data/<key>"; legacy: root storage key
  DType dtype = DType::U8;
  std::string location;     // "cpu", "cuda:0" (informational)
  uint64_t numel = 0;       // elements in the whole (root) storage
  uint64_t view_offset = 0; // legacy storage views: first element of the view in the root
  uint64_t view_numel = 0;  // elements visible through the view (== numel when not a view)
};

// torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, ...).
struct TensorRef {
  StorageRef storage;
  int64_t storage_offset = 0;  // elements, relative to the storage view
  std::vector<int64_t> size, stride;
  bool requires_grad = false;
};

enum class PickleKind : uint8_t {
  None, Bool, Int, Float, Str, Bytes, List, Tuple, Dict, Set,
  Global,   // an allowed class or function, not yet called: text = "module.name"
  Object,   // an instance of an allowed inert data class: text = "module.name", nothing kept
  Storage,  // from a persistent id: tensor->storage
  Tensor,   // tensor->*
};

const char* pickle_kind_name(PickleKind kind);

struct PickleValue {
  PickleKind kind = PickleKind::None;
  int64_t integer = 0;  // Bool (0/1), Int
  double real = 0;      // Float
  std::string text;     // Str, Bytes (raw bytes); Global, Object: "module.name"
  std::vector<PickleValue*> items;                             // List, Tuple, Set
  // Dict, in insertion order. A key set twice appears twice (torch never writes that; the
  // checkpoint index reports it as a duplicate name).
  std::vector<std::pair<PickleValue*, PickleValue*>> entries;
  std::unique_ptr<TensorRef> tensor;  // Storage (storage part only), Tensor

  // The last value stored under string key `key` of a Dict, or nullptr.
  const PickleValue* get(std::string_view key) const;
};

// Bounds on what one pickle may build. Every opcode is O(1) amortised, so time is bounded too.
struct UnpickleLimits {
  size_t max_values = size_t(1) << 23;  // values created plus container items, all told
  size_t max_stack = size_t(1) << 20;
  size_t max_marks = 1000;              // nesting of MARK
  size_t max_memo = size_t(1) << 22;
};

// Owns every value of one unpickled object. Values may be shared (memo) and containers may
// contain themselves, so walkers must bound their depth.
class PickleDocument {
public:
  const PickleValue& root() const { return *root_; }
  // Bytes read, up to and including STOP (several pickles may follow each other in one file).
  size_t consumed() const { return consumed_; }
  size_t value_count() const { return values_.size(); }
  // Every storage named by a persistent id, in file order (one per BINPERSID).
  std::vector<const StorageRef*> storages() const;

private:
  friend class PickleMachine;
  std::vector<std::unique_ptr<PickleValue>> values_;
  const PickleValue* root_ = nullptr;
  size_t consumed_ = 0;
};

// Runs the pickle in data[0, size) up to its STOP. `file` names the input in errors (LoadError).
PickleDocument unpickle(const uint8_t* data, size_t size, const std::string& file,
                        const UnpickleLimits& limits = {});

struct CheckpointTensor {
  std::string name;
  TensorRef ref;
};

struct CheckpointIndex {
  std::vector<CheckpointTensor> tensors;        // in pickle order; names unique
  std::map<std::string, std::string> metadata;  // plain top-level values as text ("epoch" -> "6")
};

// Names every tensor reachable from the root by joining dict keys (strings or ints) and list
// indices with '.'. A top-level "state_dict" dict (Lightning) becomes the root. Plain top-level
// values (int, float, str, bool) go into metadata, floats as Python's repr writes them. Checks
// each view against its storage. Shared containers may be visited a few times (at most 4 visits
// per value of the document), cycles and nesting beyond 1000 levels are LoadErrors.
CheckpointIndex index_checkpoint(const PickleDocument& doc, const std::string& file);

// Throws LoadError (naming `file` and `name`) unless the view lies inside its storage view.
void check_tensor_view(const TensorRef& ref, const std::string& file, const std::string& name);

// The length of the legacy torch.save magic-number pickle at the start of data (protocol >= 2,
// optionally framed), or 0 if data does not start with it.
size_t legacy_magic_length(const uint8_t* data, size_t size);

}  // namespace genvis::io
