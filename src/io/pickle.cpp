#include "io/pickle.h"

#include "core/error.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

namespace genvis::io {
namespace {

enum class Role {
  OrderedDict, RebuildTensorV2, RebuildTensor, RebuildParameter, RebuildParameterWithState,
  Storage, Size, Set, FrozenSet, TorchDType, Inert,
};

struct AllowedGlobal {
  std::string_view module, name;
  Role role;
  DType dtype = DType::U8;  // Storage, TorchDType
};

constexpr AllowedGlobal kAllowedGlobals[] = {
    {"collections", "OrderedDict", Role::OrderedDict},
    {"torch._utils", "_rebuild_tensor_v2", Role::RebuildTensorV2},
    {"torch._utils", "_rebuild_tensor", Role::RebuildTensor},
    {"torch._utils", "_rebuild_parameter", Role::RebuildParameter},
    {"torch._utils", "_rebuild_parameter_with_state", Role::RebuildParameterWithState},
    {"torch", "FloatStorage", Role::Storage, DType::F32},   {"torch", "HalfStorage", Role::Storage, DType::F16},
    {"torch", "BFloat16Storage", Role::Storage, DType::BF16}, {"torch", "DoubleStorage", Role::Storage, DType::F64},
    {"torch", "LongStorage", Role::Storage, DType::I64},    {"torch", "IntStorage", Role::Storage, DType::I32},
    {"torch", "ShortStorage", Role::Storage, DType::I16},   {"torch", "CharStorage", Role::Storage, DType::I8},
    {"torch", "ByteStorage", Role::Storage, DType::U8},     {"torch", "BoolStorage", Role::Storage, DType::BOOL},
    {"torch", "UntypedStorage", Role::Storage, DType::U8},  // numel counts bytes
    {"torch", "float32", Role::TorchDType, DType::F32},     {"torch", "float16", Role::TorchDType, DType::F16},
    {"torch", "bfloat16", Role::TorchDType, DType::BF16},   {"torch", "float64", Role::TorchDType, DType::F64},
    {"torch", "int64", Role::TorchDType, DType::I64},       {"torch", "int32", Role::TorchDType, DType::I32},
    {"torch", "int16", Role::TorchDType, DType::I16},       {"torch", "int8", Role::TorchDType, DType::I8},
    {"torch", "uint8", Role::TorchDType, DType::U8},        {"torch", "bool", Role::TorchDType, DType::BOOL},
    {"torch", "Size", Role::Size},
    {"builtins", "set", Role::Set},       {"builtins", "frozenset", Role::FrozenSet},
    {"__builtin__", "set", Role::Set},    {"__builtin__", "frozenset", Role::FrozenSet},
    // Inert data found in real Stable Diffusion checkpoints; each becomes an Object that keeps
    // neither arguments nor state, so nothing of it can run:
    // - Lightning uses the ModelCheckpoint class as a key of its "callbacks" dict (the value is
    //   a plain dict of paths and scores).
    {"pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint", Role::Inert},
    // - Lightning stores best_model_score as a numpy float:
    //   scalar(dtype('f8', False, True) + BUILD state, _codecs.encode('<8 raw bytes>', 'latin1')).
    {"numpy.core.multiarray", "scalar", Role::Inert},
    {"numpy._core.multiarray", "scalar", Role::Inert},  // numpy >= 2 spelling
    {"numpy", "dtype", Role::Inert},
    // - Protocol 2 writes every bytes object as _codecs.encode(str, 'latin1').
    {"_codecs", "encode", Role::Inert},
};

const AllowedGlobal* find_global(std::string_view module, std::string_view name) {
  for (const auto& g : kAllowedGlobals)
    if (g.module == module && g.name == name) return &g;
  return nullptr;
}

const AllowedGlobal* find_global(std::string_view qualified) {
  const size_t dot = qualified.rfind('.');
  if (dot == std::string_view::npos) return nullptr;
  return find_global(qualified.substr(0, dot), qualified.substr(dot + 1));
}

bool is_tuple_like(const PickleValue* v) {
  return v->kind == PickleKind::Tuple || v->kind == PickleKind::List;
}

void append_utf8(std::string& out, uint32_t cp) {
  const int tail = cp < 0x80 ? 0 : cp < 0x800 ? 1 : cp < 0x10000 ? 2 : 3;
  static constexpr uint8_t kLead[] = {0x00, 0xC0, 0xE0, 0xF0};
  out += static_cast<char>(kLead[tail] | (cp >> (6 * tail)));
  for (int i = tail - 1; i >= 0; --i) out += static_cast<char>(0x80 | ((cp >> (6 * i)) & 0x3F));
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

const char* pickle_kind_name(PickleKind kind) {
  static constexpr const char* kNames[] = {"None", "bool",  "int",    "float",  "str",     "bytes",  "list",
                                           "tuple", "dict", "set",   "global", "object", "storage", "tensor"};
  return kNames[static_cast<size_t>(kind)];
}

const PickleValue* PickleValue::get(std::string_view key) const {
  const PickleValue* found = nullptr;
  for (const auto& [k, v] : entries)
    if (k->kind == PickleKind::Str && k->text == key) found = v;
  return found;
}

std::vector<const StorageRef*> PickleDocument::storages() const {
  std::vector<const StorageRef*> out;
  for (const auto& v : values_)
    if (v->kind == PickleKind::Storage) out.push_back(&v->tensor->storage);
  return out;
}

class PickleMachine {
public:
  PickleMachine(const uint8_t* data, size_t size, const std::string& file, const UnpickleLimits& limits,
                PickleDocument& doc)
      : data_(data), size_(size), file_(file), limits_(limits), doc_(doc) {}

  void run();

private:
  // Reading the input; every read is bounds-checked against the remaining bytes.
  [[noreturn]] void fail(const std::string& what) const {
    throw LoadError(file_, "pickle: " + what + " (at byte " + std::to_string(op_pos_) + ")");
  }
  size_t remaining() const { return size_ - pos_; }
  std::string_view take(uint64_t n) {
    if (n > remaining()) fail("a length of " + std::to_string(n) + " runs past the end of the data");
    const auto* p = reinterpret_cast<const char*>(data_ + pos_);
    pos_ += static_cast<size_t>(n);
    return {p, static_cast<size_t>(n)};
  }
  uint64_t little(int n) {
    const std::string_view b = take(static_cast<uint64_t>(n));
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[static_cast<size_t>(i)]);
    return v;
  }
  int64_t signed32() { return static_cast<int32_t>(static_cast<uint32_t>(little(4))); }
  std::string_view line() {
    const void* nl = std::memchr(data_ + pos_, '\n', remaining());
    if (!nl) fail("unterminated text argument");
    const size_t n = static_cast<size_t>(static_cast<const uint8_t*>(nl) - (data_ + pos_));
    const std::string_view s = take(n);
    ++pos_;
    return s;
  }
  uint64_t length(int64_t n) {
    if (n < 0) fail("negative length " + std::to_string(n));
    return static_cast<uint64_t>(n);
  }

  // Values, the stack, marks and the memo.
  void charge(size_t n) {
    cells_ += n;
    if (cells_ > limits_.max_values)
      fail("more than " + std::to_string(limits_.max_values) + " values (limit for one pickle)");
  }
  PickleValue* make(PickleKind kind) {
    charge(1);
    doc_.values_.push_back(std::make_unique<PickleValue>());
    doc_.values_.back()->kind = kind;
    return doc_.values_.back().get();
  }
  PickleValue* make_int(int64_t v, PickleKind kind = PickleKind::Int) {
    PickleValue* p = make(kind);
    p->integer = v;
    return p;
  }
  PickleValue* make_text(PickleKind kind, std::string_view s) {
    PickleValue* p = make(kind);
    p->text.assign(s);
    return p;
  }
  PickleValue* make_tensor_value(PickleKind kind) {
    PickleValue* p = make(kind);
    p->tensor = std::make_unique<TensorRef>();
    return p;
  }
  size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(PickleValue* v) {
    if (stack_.size() >= limits_.max_stack) fail("stack deeper than " + std::to_string(limits_.max_stack));
    stack_.push_back(v);
  }
  PickleValue* top() {
    if (stack_.size() <= fence()) fail("stack underflow");
    return stack_.back();
  }
  PickleValue* pop() {
    PickleValue* v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<PickleValue*> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PickleValue*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  void memo_put(uint64_t index) {
    PickleValue* v = top();
    if (memo_.size() >= limits_.max_memo && !memo_.count(index))
      fail("memo larger than " + std::to_string(limits_.max_memo) + " entries");
    memo_[index] = v;
  }
  void memo_get(uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo index " + std::to_string(index) + " is not defined");
    push(it->second);
  }
  PickleValue* container(PickleKind kind, const char* op) {
    PickleValue* c = top();
    if (c->kind != kind)
      fail(std::string(op) + " needs a " + pickle_kind_name(kind) + " but found a " + pickle_kind_name(c->kind));
    return c;
  }
  void add_items(PickleKind kind, const char* op, const std::vector<PickleValue*>& items) {
    PickleValue* c = container(kind, op);
    charge(items.size());
    c->items.insert(c->items.end(), items.begin(), items.end());
  }
  void set_items(const char* op, const std::vector<PickleValue*>& items) {
    PickleValue* dict = container(PickleKind::Dict, op);
    if (items.size() % 2) fail(std::string(op) + " with an odd number of items");
    charge(items.size() / 2);
    for (size_t i = 0; i < items.size(); i += 2) dict->entries.emplace_back(items[i], items[i + 1]);
  }
  PickleValue* sequence(PickleKind kind, const std::vector<PickleValue*>& items) {
    PickleValue* v = make(kind);
    charge(items.size());
    v->items = items;
    return v;
  }

  // Decoding arguments.
  int64_t parse_int(std::string_view s);
  int64_t decode_long(std::string_view b);
  std::string unescape_string(std::string_view s);
  std::string raw_unicode_escape(std::string_view s);

  // Globals, calls and persistent ids.
  PickleValue* global(std::string_view module, std::string_view name);
  PickleValue* call(PickleValue* callable, const std::vector<PickleValue*>& args, const char* op);
  PickleValue* rebuild_tensor(const std::vector<PickleValue*>& args, size_t min_args, size_t max_args,
                              const char* fn);
  PickleValue* persistent_load(PickleValue* pid);
  const AllowedGlobal& role_of(PickleValue* callable, const char* op);
  int64_t int_arg(const PickleValue* v, const char* what);
  std::vector<int64_t> int_tuple(const PickleValue* v, const char* what);

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0, op_pos_ = 0;
  const std::string& file_;
  const UnpickleLimits& limits_;
  PickleDocument& doc_;
  std::vector<PickleValue*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleValue*> memo_;
  size_t cells_ = 0;
};

int64_t PickleMachine::parse_int(std::string_view s) {
  if (!s.empty() && s.back() == 'L') s.remove_suffix(1);  // protocol 0 LONG
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range) fail("integer " + std::string(s.substr(0, 40)) + " does not fit in 64 bits");
  if (ec != std::errc() || end != s.data() + s.size() || s.empty())
    fail("malformed integer '" + std::string(s.substr(0, 40)) + "'");
  return v;
}

// Little-endian two's complement (LONG1/LONG4).
int64_t PickleMachine::decode_long(std::string_view b) {
  if (b.empty()) return 0;
  const bool negative = static_cast<uint8_t>(b.back()) & 0x80;
  const bool wide = b.size() > 8;
  while (b.size() > 8) {
    if (static_cast<uint8_t>(b.back()) != (negative ? 0xFF : 0x00)) fail("integer does not fit in 64 bits");
    b.remove_suffix(1);
  }
  uint64_t v = 0;
  for (size_t i = b.size(); i-- > 0;) v = (v << 8) | static_cast<uint8_t>(b[i]);
  if (b.size() < 8 && negative) v |= ~uint64_t(0) << (8 * b.size());
  if (wide && ((v >> 63) != 0) != negative) fail("integer does not fit in 64 bits");
  return static_cast<int64_t>(v);
}

// Protocol 0 STRING: a quoted Python 2 repr, with the escapes repr writes.
std::string PickleMachine::unescape_string(std::string_view s) {
  if (s.size() < 2 || (s.front() != '\'' && s.front() != '"') || s.back() != s.front())
    fail("STRING argument is not quoted");
  s = s.substr(1, s.size() - 2);
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
    } else if (++i == s.size()) {
      fail("STRING ends in a backslash");
    } else if (s[i] == 'x') {
      const int hi = i + 1 < s.size() ? hex_digit(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? hex_digit(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) fail("bad \\x escape in STRING");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      const char* kEscapes = "n\nr\rt\t\\\\''\"\"";  // pairs: escape letter, character
      const char* e = std::strchr(kEscapes, s[i]);
      if (s[i] == '\0' || !e || (e - kEscapes) % 2) fail(std::string("unsupported escape \\") + s[i] + " in STRING");
      out += e[1];
    }
  }
  return out;
}

// Protocol 0 UNICODE: latin-1 with \uXXXX and \UXXXXXXXX escapes; returned as UTF-8.
std::string PickleMachine::raw_unicode_escape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c == '\\' && i + 1 < s.size() && (s[i + 1] == 'u' || s[i + 1] == 'U')) {
      const size_t digits = s[i + 1] == 'u' ? 4 : 8;
      if (i + 2 + digits > s.size()) fail("truncated \\u escape in UNICODE");
      uint32_t cp = 0;
      for (size_t k = 0; k < digits; ++k) {
        const int d = hex_digit(s[i + 2 + k]);
        if (d < 0) fail("bad \\u escape in UNICODE");
        cp = cp * 16 + static_cast<uint32_t>(d);
      }
      if (cp > 0x10FFFF) fail("code point out of range in UNICODE");
      append_utf8(out, cp);
      i += 1 + digits;
    } else {
      append_utf8(out, c);
    }
  }
  return out;
}

PickleValue* PickleMachine::global(std::string_view module, std::string_view name) {
  if (!find_global(module, name))
    fail("forbidden global '" + std::string(module.substr(0, 200)) + "." + std::string(name.substr(0, 200)) +
         "' in pickle (only tensors, dicts, lists and plain values can be loaded)");
  PickleValue* v = make(PickleKind::Global);
  v->text.reserve(module.size() + 1 + name.size());
  v->text.append(module).append(".").append(name);
  return v;
}

const AllowedGlobal& PickleMachine::role_of(PickleValue* callable, const char* op) {
  if (callable->kind != PickleKind::Global)
    fail(std::string(op) + " on a " + pickle_kind_name(callable->kind) + ", not a class or function");
  return *find_global(callable->text);  // only allowed globals become Global values
}

int64_t PickleMachine::int_arg(const PickleValue* v, const char* what) {
  if (v->kind != PickleKind::Int && v->kind != PickleKind::Bool)
    fail(std::string(what) + " is a " + pickle_kind_name(v->kind) + ", not an int");
  return v->integer;
}

std::vector<int64_t> PickleMachine::int_tuple(const PickleValue* v, const char* what) {
  if (!is_tuple_like(v)) fail(std::string(what) + " is a " + pickle_kind_name(v->kind) + ", not a tuple");
  std::vector<int64_t> out;
  out.reserve(v->items.size());
  for (const PickleValue* item : v->items) {
    const int64_t x = int_arg(item, what);
    if (x < 0) fail(std::string(what) + " has a negative entry " + std::to_string(x));
    out.push_back(x);
  }
  return out;
}

PickleValue* PickleMachine::rebuild_tensor(const std::vector<PickleValue*>& args, size_t min_args, size_t max_args,
                                           const char* fn) {
  if (args.size() < min_args || args.size() > max_args)
    fail(std::string(fn) + " with " + std::to_string(args.size()) + " arguments");
  if (args[0]->kind != PickleKind::Storage)
    fail(std::string(fn) + " of a " + pickle_kind_name(args[0]->kind) + ", not a storage");
  PickleValue* t = make_tensor_value(PickleKind::Tensor);
  t->tensor->storage = args[0]->tensor->storage;
  t->tensor->storage_offset = int_arg(args[1], "storage offset");
  if (t->tensor->storage_offset < 0) fail("negative storage offset");
  t->tensor->size = int_tuple(args[2], "tensor size");
  t->tensor->stride = int_tuple(args[3], "tensor stride");
  if (t->tensor->size.size() != t->tensor->stride.size())
    fail("tensor size has " + std::to_string(t->tensor->size.size()) + " dims but its stride has " +
         std::to_string(t->tensor->stride.size()));
  if (args.size() > 4) t->tensor->requires_grad = int_arg(args[4], "requires_grad") != 0;
  return t;
}

PickleValue* PickleMachine::call(PickleValue* callable, const std::vector<PickleValue*>& args, const char* op) {
  const AllowedGlobal& g = role_of(callable, op);
  switch (g.role) {
    case Role::OrderedDict: {
      PickleValue* d = make(PickleKind::Dict);
      if (args.empty()) return d;
      if (args.size() != 1 || !is_tuple_like(args[0])) fail("OrderedDict takes one list of pairs");
      charge(args[0]->items.size());
      for (PickleValue* pair : args[0]->items) {
        if (!is_tuple_like(pair) || pair->items.size() != 2) fail("OrderedDict item is not a pair");
        d->entries.emplace_back(pair->items[0], pair->items[1]);
      }
      return d;
    }
    case Role::RebuildTensorV2: return rebuild_tensor(args, 6, 7, "_rebuild_tensor_v2");
    case Role::RebuildTensor: return rebuild_tensor(args, 4, 4, "_rebuild_tensor");
    case Role::RebuildParameter:
    case Role::RebuildParameterWithState: {
      const size_t n = g.role == Role::RebuildParameter ? 3 : 4;
      if (args.size() != n || args[0]->kind != PickleKind::Tensor)
        fail(std::string(g.name) + " needs a tensor and " + std::to_string(n - 1) + " more arguments");
      return args[0];
    }
    case Role::Size:
      if (args.empty()) return make(PickleKind::Tuple);
      if (args.size() != 1 || !is_tuple_like(args[0])) fail("torch.Size takes one tuple");
      return sequence(PickleKind::Tuple, args[0]->items);
    case Role::Set:
    case Role::FrozenSet:
      if (args.empty()) return make(PickleKind::Set);
      if (args.size() != 1 || (!is_tuple_like(args[0]) && args[0]->kind != PickleKind::Set))
        fail("set takes one list");
      return sequence(PickleKind::Set, args[0]->items);
    case Role::Inert: return make_text(PickleKind::Object, callable->text);
    case Role::Storage:
    case Role::TorchDType: break;
  }
  fail("'" + callable->text + "' cannot be called");
}

// ('storage', torch.FloatStorage, key, location, numel) in zip checkpoints; legacy files add
// view metadata: None or (view_key, offset, view_numel).
PickleValue* PickleMachine::persistent_load(PickleValue* pid) {
  const auto& t = pid->items;
  if (pid->kind != PickleKind::Tuple || (t.size() != 5 && t.size() != 6) || t[0]->kind != PickleKind::Str ||
      t[0]->text != "storage")
    fail("persistent id is not ('storage', type, key, location, numel)");
  if (t[1]->kind != PickleKind::Global || find_global(t[1]->text)->role != Role::Storage)
    fail("persistent id storage type is a " + std::string(pickle_kind_name(t[1]->kind)) + " '" +
         t[1]->text.substr(0, 100) + "', not a torch storage class");
  if (t[2]->kind != PickleKind::Str && t[2]->kind != PickleKind::Int) fail("storage key is not a string");
  if (t[3]->kind != PickleKind::Str) fail("storage location is not a string");
  PickleValue* s = make_tensor_value(PickleKind::Storage);
  StorageRef& ref = s->tensor->storage;
  ref.key = t[2]->kind == PickleKind::Str ? t[2]->text : std::to_string(t[2]->integer);
  ref.dtype = find_global(t[1]->text)->dtype;
  ref.location = t[3]->text;
  const int64_t numel = int_arg(t[4], "storage numel");
  if (numel < 0 || static_cast<uint64_t>(numel) > (uint64_t(1) << 62) / dtype_size(ref.dtype))
    fail("storage '" + ref.key.substr(0, 100) + "' has an impossible element count " + std::to_string(numel));
  ref.numel = ref.view_numel = static_cast<uint64_t>(numel);
  if (t.size() == 6 && t[5]->kind != PickleKind::None) {
    const PickleValue* view = t[5];
    if (view->kind != PickleKind::Tuple || view->items.size() != 3) fail("storage view is not (key, offset, size)");
    const int64_t offset = int_arg(view->items[1], "storage view offset");
    const int64_t count = int_arg(view->items[2], "storage view size");
    if (offset < 0 || count < 0 || static_cast<uint64_t>(offset) > ref.numel ||
        static_cast<uint64_t>(count) > ref.numel - static_cast<uint64_t>(offset))
      fail("storage view [" + std::to_string(offset) + ", +" + std::to_string(count) + ") lies outside storage '" +
           ref.key.substr(0, 100) + "' of " + std::to_string(ref.numel) + " elements");
    ref.view_offset = static_cast<uint64_t>(offset);
    ref.view_numel = static_cast<uint64_t>(count);
  }
  return s;
}

void PickleMachine::run() {
  while (true) {
    op_pos_ = pos_;
    if (pos_ >= size_) fail("data ends before STOP");
    const uint8_t op = data_[pos_++];
    switch (op) {
      case 0x80: {  // PROTO
        const uint64_t v = little(1);
        if (v > 5) fail("unsupported pickle protocol " + std::to_string(v));
        break;
      }
      case 0x95: {  // FRAME: only a read-ahead hint
        const uint64_t n = little(8);
        if (n > remaining()) fail("frame of " + std::to_string(n) + " bytes runs past the end of the data");
        break;
      }
      case '.':  // STOP
        doc_.root_ = pop();
        doc_.consumed_ = pos_;
        return;
      case '(':  // MARK
        if (marks_.size() >= limits_.max_marks) fail("MARKs nested deeper than " + std::to_string(limits_.max_marks));
        marks_.push_back(stack_.size());
        break;
      case '0':  // POP
        if (stack_.size() > fence()) stack_.pop_back();
        else pop_mark();
        break;
      case '1': pop_mark(); break;  // POP_MARK
      case '2': push(top()); break;  // DUP
      case 'N': push(make(PickleKind::None)); break;
      case 0x88: push(make_int(1, PickleKind::Bool)); break;  // NEWTRUE
      case 0x89: push(make_int(0, PickleKind::Bool)); break;  // NEWFALSE
      case 'I': {
        const std::string_view s = line();
        if (s == "00" || s == "01") push(make_int(s == "01", PickleKind::Bool));
        else push(make_int(parse_int(s)));
        break;
      }
      case 'J': push(make_int(signed32())); break;                                   // BININT
      case 'K': push(make_int(static_cast<int64_t>(little(1)))); break;               // BININT1
      case 'M': push(make_int(static_cast<int64_t>(little(2)))); break;               // BININT2
      case 'L': push(make_int(parse_int(line()))); break;                              // LONG
      case 0x8a: push(make_int(decode_long(take(little(1))))); break;                  // LONG1
      case 0x8b: push(make_int(decode_long(take(length(signed32()))))); break;         // LONG4
      case 'F': {
        const std::string_view s = line();
        PickleValue* v = make(PickleKind::Float);
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v->real);
        if (ec != std::errc() || end != s.data() + s.size()) fail("malformed float");
        push(v);
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        const std::string_view b = take(8);
        uint64_t bits = 0;
        for (char c : b) bits = (bits << 8) | static_cast<uint8_t>(c);
        PickleValue* v = make(PickleKind::Float);
        std::memcpy(&v->real, &bits, sizeof bits);
        push(v);
        break;
      }
      case 'S': push(make_text(PickleKind::Str, unescape_string(line()))); break;       // STRING
      case 'V': push(make_text(PickleKind::Str, raw_unicode_escape(line()))); break;    // UNICODE
      case 'T': push(make_text(PickleKind::Str, take(length(signed32())))); break;     // BINSTRING
      case 'U': push(make_text(PickleKind::Str, take(little(1)))); break;              // SHORT_BINSTRING
      case 'X': push(make_text(PickleKind::Str, take(little(4)))); break;              // BINUNICODE
      case 0x8c: push(make_text(PickleKind::Str, take(little(1)))); break;             // SHORT_BINUNICODE
      case 0x8d: push(make_text(PickleKind::Str, take(little(8)))); break;             // BINUNICODE8
      case 'B': push(make_text(PickleKind::Bytes, take(little(4)))); break;            // BINBYTES
      case 'C': push(make_text(PickleKind::Bytes, take(little(1)))); break;            // SHORT_BINBYTES
      case 0x8e: case 0x96: push(make_text(PickleKind::Bytes, take(little(8)))); break; // BINBYTES8, BYTEARRAY8
      case ']': push(make(PickleKind::List)); break;
      case '}': push(make(PickleKind::Dict)); break;
      case ')': push(make(PickleKind::Tuple)); break;
      case 0x8f: push(make(PickleKind::Set)); break;  // EMPTY_SET
      case 'l': push(sequence(PickleKind::List, pop_mark())); break;
      case 't': push(sequence(PickleKind::Tuple, pop_mark())); break;
      case 0x91: push(sequence(PickleKind::Set, pop_mark())); break;  // FROZENSET
      case 'd': {
        const auto items = pop_mark();
        push(make(PickleKind::Dict));
        set_items("DICT", items);
        break;
      }
      case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
        std::vector<PickleValue*> items(op - 0x84);
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        push(sequence(PickleKind::Tuple, items));
        break;
      }
      case 'a': add_items(PickleKind::List, "APPEND", {pop()}); break;
      case 'e': add_items(PickleKind::List, "APPENDS", pop_mark()); break;
      case 0x90: add_items(PickleKind::Set, "ADDITEMS", pop_mark()); break;
      case 's': {  // SETITEM
        PickleValue* v = pop();
        PickleValue* k = pop();
        set_items("SETITEM", {k, v});
        break;
      }
      case 'u': set_items("SETITEMS", pop_mark()); break;
      case 'g': memo_get(static_cast<uint64_t>(parse_int(line()))); break;  // GET
      case 'h': memo_get(little(1)); break;                                   // BINGET
      case 'j': memo_get(little(4)); break;                                   // LONG_BINGET
      case 'p': memo_put(static_cast<uint64_t>(parse_int(line()))); break;  // PUT
      case 'q': memo_put(little(1)); break;                                   // BINPUT
      case 'r': memo_put(little(4)); break;                                   // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); break;                               // MEMOIZE
      case 'c': {  // GLOBAL
        const std::string_view module = line();
        push(global(module, line()));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        PickleValue* name = pop();
        PickleValue* module = pop();
        if (module->kind != PickleKind::Str || name->kind != PickleKind::Str) fail("STACK_GLOBAL of non-strings");
        push(global(module->text, name->text));
        break;
      }
      case 'R': {  // REDUCE
        PickleValue* args = pop();
        PickleValue* callable = pop();
        if (args->kind != PickleKind::Tuple) fail("REDUCE arguments are a " + std::string(pickle_kind_name(args->kind)));
        push(call(callable, args->items, "REDUCE"));
        break;
      }
      case 0x81: case 0x92: {  // NEWOBJ, NEWOBJ_EX
        if (op == 0x92) {
          PickleValue* kwargs = pop();
          if (kwargs->kind != PickleKind::Dict || !kwargs->entries.empty()) fail("NEWOBJ_EX with keyword arguments");
        }
        PickleValue* args = pop();
        PickleValue* cls = pop();
        if (args->kind != PickleKind::Tuple) fail("NEWOBJ arguments are a " + std::string(pickle_kind_name(args->kind)));
        push(call(cls, args->items, "NEWOBJ"));
        break;
      }
      case 'i': {  // INST
        const std::string_view module = line();
        PickleValue* cls = global(module, line());
        push(call(cls, pop_mark(), "INST"));
        break;
      }
      case 'o': {  // OBJ
        auto items = pop_mark();
        if (items.empty()) fail("OBJ without a class");
        PickleValue* cls = items.front();
        items.erase(items.begin());
        push(call(cls, items, "OBJ"));
        break;
      }
      case 'b': {  // BUILD: state of inert objects and attributes of dicts (_metadata) are dropped
        pop();
        PickleValue* obj = top();
        if (obj->kind != PickleKind::Object && obj->kind != PickleKind::Dict)
          fail(std::string("BUILD on a ") + pickle_kind_name(obj->kind));
        break;
      }
      case 'Q': push(persistent_load(pop())); break;  // BINPERSID
      case 'P': fail("text persistent ids (PERSID) are not used by torch.save");
      case 0x82: case 0x83: case 0x84: fail("extension registry codes (EXT1/2/4) are not supported");
      case 0x97: case 0x98: fail("out-of-band buffers (protocol 5) are not supported");
      default: {
        static const char* kHex = "0123456789abcdef";
        fail(std::string("unknown opcode 0x") + kHex[op >> 4] + kHex[op & 15]);
      }
    }
  }
}

PickleDocument unpickle(const uint8_t* data, size_t size, const std::string& file, const UnpickleLimits& limits) {
  PickleDocument doc;
  PickleMachine(data, size, file, limits, doc).run();
  return doc;
}

size_t legacy_magic_length(const uint8_t* data, size_t size) {
  // 0x1950a86a20f9469cfc6c as LONG1, little-endian.
  static constexpr uint8_t kMagic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.'};
  if (size < 2 || data[0] != 0x80 || data[1] < 2 || data[1] > 5) return 0;
  size_t pos = 2;
  if (size > pos && data[pos] == 0x95) pos += 9;  // FRAME
  if (size < pos + sizeof kMagic || std::memcmp(data + pos, kMagic, sizeof kMagic) != 0) return 0;
  return pos + sizeof kMagic;
}

namespace {

constexpr size_t kMaxDepth = 1000;
constexpr size_t kMaxNameLength = 4096;
constexpr size_t kMaxTotalNameBytes = size_t(64) << 20;

// Walks the value graph keeping the path as a stack of keys; a name is built only at a tensor.
class Indexer {
public:
  Indexer(const std::string& file, size_t max_visits, CheckpointIndex& out)
      : file_(file), max_visits_(max_visits), out_(out) {}

  void walk(const PickleValue& v) {
    if (++visits_ > max_visits_) throw LoadError(file_, "pickle: object graph too large (shared or cyclic containers)");
    if (path_.size() > kMaxDepth)
      throw LoadError(file_, "pickle: containers nested deeper than " + std::to_string(kMaxDepth) + " levels");
    switch (v.kind) {
      case PickleKind::Tensor: emit(*v.tensor); break;
      case PickleKind::Dict:
        for (const auto& [key, value] : v.entries) {
          path_.push_back({key, 0});
          walk(*value);
          path_.pop_back();
        }
        break;
      case PickleKind::List:
      case PickleKind::Tuple:
        for (size_t i = 0; i < v.items.size(); ++i) {
          path_.push_back({nullptr, static_cast<int64_t>(i)});
          walk(*v.items[i]);
          path_.pop_back();
        }
        break;
      default: break;
    }
  }

private:
  struct Part {
    const PickleValue* key;  // nullptr: list index
    int64_t index;
  };

  void emit(const TensorRef& ref) {
    std::string name;
    for (const Part& p : path_) {
      if (!name.empty() || &p != &path_.front()) name += '.';
      if (!p.key) {
        name += std::to_string(p.index);
      } else if (p.key->kind == PickleKind::Str) {
        if (p.key->text.size() > kMaxNameLength) throw LoadError(file_, "pickle: dict key longer than 4096 bytes");
        name += p.key->text;
      } else if (p.key->kind == PickleKind::Int) {
        name += std::to_string(p.key->integer);
      } else {
        throw LoadError(file_, name + "<" + pickle_kind_name(p.key->kind) + ">",
                        "tensor under a dict key that is not a string or an int");
      }
      if (name.size() > kMaxNameLength)
        throw LoadError(file_, name.substr(0, 100) + "...", "tensor name longer than 4096 bytes");
    }
    total_name_bytes_ += name.size();
    if (total_name_bytes_ > kMaxTotalNameBytes) throw LoadError(file_, "pickle: tensor names exceed 64 MiB in total");
    check_tensor_view(ref, file_, name);
    if (!names_.insert(name).second) throw LoadError(file_, name, "duplicate tensor name");
    out_.tensors.push_back({std::move(name), ref});
  }

  const std::string& file_;
  size_t max_visits_;
  CheckpointIndex& out_;
  std::vector<Part> path_;
  std::unordered_set<std::string> names_;
  size_t visits_ = 0, total_name_bytes_ = 0;
};

// repr(float): shortest round-trip digits, fixed notation for exponents in [-4, 16).
std::string python_float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x < 0 ? "-inf" : "inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  const std::string s(buf, r.ptr);  // "-1.2345e-04"
  const size_t e = s.find('e');
  const bool negative = s[0] == '-';
  std::string digits;
  for (size_t i = negative ? 1 : 0; i < e; ++i)
    if (s[i] != '.') digits += s[i];
  const int exponent = std::stoi(s.substr(e + 1));
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) return out + "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    const auto point = static_cast<size_t>(exponent) + 1;
    if (digits.size() < point) digits.append(point - digits.size(), '0');
    const std::string frac = digits.substr(point);
    return out + digits.substr(0, point) + "." + (frac.empty() ? "0" : frac);
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  const int magnitude = exponent < 0 ? -exponent : exponent;
  return out + "e" + (exponent < 0 ? "-" : "+") + (magnitude < 10 ? "0" : "") + std::to_string(magnitude);
}

std::string plain_text(const PickleValue& v) {
  switch (v.kind) {
    case PickleKind::Bool: return v.integer ? "True" : "False";
    case PickleKind::Int: return std::to_string(v.integer);
    case PickleKind::Str: return v.text;
    case PickleKind::Float: return python_float_repr(v.real);
    default: return {};
  }
}

}  // namespace

CheckpointIndex index_checkpoint(const PickleDocument& doc, const std::string& file) {
  const PickleValue& root = doc.root();
  CheckpointIndex out;
  const PickleValue* tree = &root;
  if (root.kind == PickleKind::Dict) {
    const PickleValue* sd = root.get("state_dict");
    if (sd && sd->kind == PickleKind::Dict) tree = sd;
    for (const auto& [key, value] : root.entries) {
      const bool plain = value->kind == PickleKind::Bool || value->kind == PickleKind::Int ||
                         value->kind == PickleKind::Float || value->kind == PickleKind::Str;
      if (key->kind == PickleKind::Str && plain) out.metadata[key->text] = plain_text(*value);
    }
  } else if (root.kind != PickleKind::List && root.kind != PickleKind::Tuple) {
    throw LoadError(file, std::string("the checkpoint holds a ") + pickle_kind_name(root.kind) +
                              ", not a dict of tensors");
  }
  Indexer(file, 4 * doc.value_count() + 1024, out).walk(*tree);
  return out;
}

void check_tensor_view(const TensorRef& ref, const std::string& file, const std::string& name) {
  const StorageRef& s = ref.storage;
  if (ref.size.size() != ref.stride.size())
    throw LoadError(file, name, "size " + shape_string(ref.size) + " and stride " + shape_string(ref.stride) +
                                    " differ in length");
  const auto numel = checked_numel(ref.size);
  if (!numel) throw LoadError(file, name, "impossible tensor size " + shape_string(ref.size));
  if (ref.storage_offset < 0) throw LoadError(file, name, "negative storage offset");
  const auto offset = static_cast<uint64_t>(ref.storage_offset);
  uint64_t last = offset;  // index of the last element the view touches
  bool overflow = false;
  if (*numel > 0) {
    for (size_t i = 0; i < ref.size.size(); ++i) {
      if (ref.stride[i] < 0) throw LoadError(file, name, "negative stride " + shape_string(ref.stride));
      uint64_t step = 0;
      overflow |= __builtin_mul_overflow(static_cast<uint64_t>(ref.size[i] - 1), static_cast<uint64_t>(ref.stride[i]),
                                         &step);
      overflow |= __builtin_add_overflow(last, step, &last);
    }
  }
  const uint64_t needed = *numel == 0 ? offset : last + 1;
  if (overflow || needed > s.view_numel || (*numel == 0 && offset > s.view_numel))
    throw LoadError(file, name,
                    "view " + shape_string(ref.size) + " with stride " + shape_string(ref.stride) + " at offset " +
                        std::to_string(offset) + " needs " + (overflow ? "more than 2^64" : std::to_string(needed)) +
                        " elements but storage '" + s.key.substr(0, 100) + "' has " + std::to_string(s.view_numel));
}

}  // namespace genvis::io
