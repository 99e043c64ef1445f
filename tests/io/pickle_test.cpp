#include "io/pickle.h"

#include "core/error.h"
#include "support/test_support.h"
#include "support/torch_checkpoint_writer.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

namespace genvis::io {
namespace {

using std::string_literals::operator""s;

// ---- Raw pickle bytes -----------------------------------------------------------------------

using test::global;
using test::le;
using test::str;
std::string short_str(std::string_view s) { return "\x8c" + le(s.size(), 1) + std::string(s); }
// The smallest integer opcode for v (BININT1, BININT, LONG1), unlike the writer's fixed LONG1.
std::string integer(int64_t v) {
  if (v >= 0 && v < 256) return "K" + le(static_cast<uint64_t>(v), 1);
  if (v >= INT32_MIN && v <= INT32_MAX) return "J" + le(static_cast<uint32_t>(v), 4);
  return "\x8a\x08" + le(static_cast<uint64_t>(v), 8);
}
std::string tuple(const std::vector<int64_t>& v) {
  std::string out = "(";
  for (int64_t x : v) out += integer(x);
  return out + "t";
}
const std::string kProto2 = "\x80\x02";
const std::string kEmptyOrderedDict = global("collections", "OrderedDict") + ")R";

std::string storage_pid(std::string_view cls, std::string_view key, int64_t numel) {
  return "(" + str("storage") + global("torch", cls) + str(key) + str("cpu") + integer(numel) + "tQ";
}
// _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())
std::string tensor(std::string_view cls, std::string_view key, int64_t numel, int64_t offset,
                   const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
  return global("torch._utils", "_rebuild_tensor_v2") + "(" + storage_pid(cls, key, numel) + integer(offset) +
         tuple(size) + tuple(stride) + "\x89" + kEmptyOrderedDict + "tR";
}
std::string tensor(std::string_view key, const std::vector<int64_t>& size) {
  int64_t n = 1;
  std::vector<int64_t> stride(size.size());
  for (size_t i = size.size(); i-- > 0;) {
    stride[i] = n;
    n *= size[i];
  }
  return tensor("FloatStorage", key, n, 0, size, stride);
}

PickleDocument parse(const std::string& bytes, const UnpickleLimits& limits = {}) {
  return unpickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "test.pkl", limits);
}

// The LoadError message of unpickling (and indexing) `bytes`, or "" if it loads.
std::string load_error(const std::string& bytes, const UnpickleLimits& limits = {}) {
  try {
    const PickleDocument doc = parse(bytes, limits);
    index_checkpoint(doc, "test.pkl");
  } catch (const LoadError& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_LOAD_ERROR(bytes, fragment)                                        \
  do {                                                                            \
    const std::string message_ = load_error(bytes);                               \
    EXPECT_NE(message_.find(fragment), std::string::npos) << "message: " << message_; \
  } while (0)

// ---- Plain values ---------------------------------------------------------------------------

TEST(Unpickle, PlainValuesOfProtocol2) {
  const std::string bytes = kProto2 + "}q\x00("s + str("none") + "N" + str("yes") + "\x88" + str("no") + "\x89" +
                            str("small") + "K\x07" + str("medium") + "M\x39\x30" + str("negative") + "J" +
                            le(static_cast<uint32_t>(-5), 4) + str("long") + "\x8a\x06" + le(uint64_t(1) << 40, 6) +
                            str("minus_one") + "\x8a\x01\xff" + str("float") + "G\x3f\xf8\x00\x00\x00\x00\x00\x00"s +
                            str("bytes") + "C\x03" + std::string("a\0b", 3) + str("list") + "](K\x01K\x02" "e" +
                            str("tuple") + "K\x01K\x02\x86" + "u.";
  const PickleDocument doc = parse(bytes);
  const PickleValue& root = doc.root();
  ASSERT_EQ(root.kind, PickleKind::Dict);
  ASSERT_EQ(root.entries.size(), 12u);
  EXPECT_EQ(root.get("none")->kind, PickleKind::None);
  EXPECT_EQ(root.get("yes")->kind, PickleKind::Bool);
  EXPECT_EQ(root.get("yes")->integer, 1);
  EXPECT_EQ(root.get("no")->integer, 0);
  EXPECT_EQ(root.get("small")->integer, 7);
  EXPECT_EQ(root.get("medium")->integer, 12345);
  EXPECT_EQ(root.get("negative")->integer, -5);
  EXPECT_EQ(root.get("long")->integer, int64_t(1) << 40);
  EXPECT_EQ(root.get("minus_one")->integer, -1);
  EXPECT_EQ(root.get("float")->real, 1.5);
  EXPECT_EQ(root.get("bytes")->kind, PickleKind::Bytes);
  EXPECT_EQ(root.get("bytes")->text, std::string("a\0b", 3));
  const PickleValue* list = root.get("list");
  ASSERT_EQ(list->kind, PickleKind::List);
  ASSERT_EQ(list->items.size(), 2u);
  EXPECT_EQ(list->items[1]->integer, 2);
  EXPECT_EQ(root.get("tuple")->kind, PickleKind::Tuple);
  EXPECT_EQ(root.get("missing"), nullptr);
  EXPECT_EQ(doc.consumed(), bytes.size());
}

TEST(Unpickle, TextOpcodesOfProtocol0) {
  const std::string bytes =
      "(dp0\nS'a\\n\\x41'\np1\nI42\nsV\\u00e9t\\U0001F600\np2\nF2.5\nsS\"b\"\nI01\nsS'c'\nL-12345678901L\ns.";
  const PickleDocument doc = parse(bytes);
  const PickleValue& root = doc.root();
  ASSERT_EQ(root.entries.size(), 4u);
  EXPECT_EQ(root.entries[0].first->text, "a\nA");
  EXPECT_EQ(root.entries[0].second->integer, 42);
  EXPECT_EQ(root.entries[1].first->text, "\xc3\xa9t\xf0\x9f\x98\x80");
  EXPECT_EQ(root.entries[1].second->real, 2.5);
  EXPECT_EQ(root.get("b")->kind, PickleKind::Bool);
  EXPECT_EQ(root.get("c")->integer, -12345678901);
}

TEST(Unpickle, Protocol4OpcodesAndSets) {
  const std::string bytes = "\x80\x04\x95" + le(40, 8) + "]\x94(" + short_str("x") + "\x94\x8f\x94(K\x01K\x02\x90" +
                            "(K\x03\x91" + "\x8e" + le(2, 8) + "hi" + "\x8d" + le(1, 8) + "u" + "h\x01" + "e.";
  const PickleDocument doc = parse(bytes);
  const PickleValue& root = doc.root();
  ASSERT_EQ(root.kind, PickleKind::List);
  ASSERT_EQ(root.items.size(), 6u);
  EXPECT_EQ(root.items[0]->text, "x");
  ASSERT_EQ(root.items[1]->kind, PickleKind::Set);
  EXPECT_EQ(root.items[1]->items.size(), 2u);
  EXPECT_EQ(root.items[2]->kind, PickleKind::Set);
  EXPECT_EQ(root.items[3]->text, "hi");
  EXPECT_EQ(root.items[4]->text, "u");
  EXPECT_EQ(root.items[5], root.items[0]);  // memo shares, never copies
}

TEST(Unpickle, LongIntegersUpTo64Bits) {
  EXPECT_EQ(parse(kProto2 + "\x8a\x08" + le(INT64_MAX, 8) + ".").root().integer, INT64_MAX);
  EXPECT_EQ(parse(kProto2 + "\x8a\x08" + le(static_cast<uint64_t>(INT64_MIN), 8) + ".").root().integer, INT64_MIN);
  EXPECT_EQ(parse(kProto2 + "\x8a\x09" + std::string(9, '\xff') + ".").root().integer, -1);  // sign extension
  EXPECT_EQ(parse(kProto2 + "\x8a\x00."s).root().integer, 0);
  EXPECT_EQ(parse(kProto2 + "\x8b" + le(3, 4) + "\x00\x80\xff."s).root().integer, -32768);
  // 2^63 needs a ninth byte; the legacy magic number is 80 bits.
  EXPECT_LOAD_ERROR(kProto2 + "\x8a\x09" + le(uint64_t(1) << 63, 8) + "\x00."s, "does not fit in 64 bits");
  EXPECT_LOAD_ERROR(kProto2 + "\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", "does not fit in 64 bits");
  EXPECT_LOAD_ERROR("L99999999999999999999L\n.", "does not fit in 64 bits");
  EXPECT_LOAD_ERROR("I12x\n.", "malformed integer");
}

// ---- Tensors and storages -------------------------------------------------------------------

TEST(Unpickle, RebuildTensorV2MakesATensorReference) {
  const std::string bytes = kProto2 + tensor("HalfStorage", "7", 24, 3, {2, 3}, {1, 2}) + ".";
  const PickleDocument doc = parse(bytes);
  ASSERT_EQ(doc.root().kind, PickleKind::Tensor);
  const TensorRef& t = *doc.root().tensor;
  EXPECT_EQ(t.storage.key, "7");
  EXPECT_EQ(t.storage.dtype, DType::F16);
  EXPECT_EQ(t.storage.location, "cpu");
  EXPECT_EQ(t.storage.numel, 24u);
  EXPECT_EQ(t.storage.view_numel, 24u);
  EXPECT_EQ(t.storage_offset, 3);
  EXPECT_EQ(t.size, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t.stride, (std::vector<int64_t>{1, 2}));
  ASSERT_EQ(doc.storages().size(), 1u);
  EXPECT_EQ(doc.storages()[0]->key, "7");
}

TEST(Unpickle, OldRebuildersParametersAndLegacyStorageViews) {
  // _rebuild_tensor(storage, offset, size, stride) over a legacy view [2, 2+5) of a 10-element root.
  const std::string legacy_pid = "(" + str("storage") + global("torch", "LongStorage") + str("140") + str("cuda:0") +
                                 integer(10) + "(" + str("141") + integer(2) + integer(5) + "ttQ";
  const std::string old = global("torch._utils", "_rebuild_tensor") + "(" + legacy_pid + integer(1) + tuple({4}) +
                          tuple({1}) + "tR";
  const std::string param = global("torch._utils", "_rebuild_parameter_with_state") + "(" +
                            tensor("DoubleStorage", "0", 4, 0, {4}, {1}) + "\x88" + kEmptyOrderedDict + "}tR";
  const PickleDocument doc = parse(kProto2 + "(" + old + param + "l.");
  ASSERT_EQ(doc.root().items.size(), 2u);
  const TensorRef& a = *doc.root().items[0]->tensor;
  EXPECT_EQ(a.storage.dtype, DType::I64);
  EXPECT_EQ(a.storage.location, "cuda:0");
  EXPECT_EQ(a.storage.numel, 10u);
  EXPECT_EQ(a.storage.view_offset, 2u);
  EXPECT_EQ(a.storage.view_numel, 5u);
  EXPECT_EQ(a.storage_offset, 1);
  const TensorRef& b = *doc.root().items[1]->tensor;
  EXPECT_EQ(b.storage.dtype, DType::F64);
  EXPECT_EQ(b.size, (std::vector<int64_t>{4}));
}

TEST(Unpickle, BadPersistentIdsAreRejected) {
  EXPECT_LOAD_ERROR(kProto2 + "(" + str("module") + global("torch", "FloatStorage") + str("0") + str("cpu") +
                        integer(1) + "tQ.",
                    "persistent id is not");
  EXPECT_LOAD_ERROR(kProto2 + "(" + str("storage") + global("collections", "OrderedDict") + str("0") + str("cpu") +
                        integer(1) + "tQ.",
                    "not a torch storage class");
  EXPECT_LOAD_ERROR(kProto2 + storage_pid("FloatStorage", "0", -1) + ".", "impossible element count");
  EXPECT_LOAD_ERROR(kProto2 + storage_pid("FloatStorage", "0", int64_t(1) << 61) + ".", "impossible element count");
  EXPECT_LOAD_ERROR(kProto2 + "(" + str("storage") + global("torch", "FloatStorage") + str("0") + str("cpu") +
                        integer(4) + "(" + str("1") + integer(3) + integer(2) + "ttQ.",
                    "lies outside storage");
  EXPECT_LOAD_ERROR(kProto2 + str("x") + "Q.", "persistent id is not");
  EXPECT_LOAD_ERROR("P0\n.", "PERSID");
}

TEST(Unpickle, WrongTensorArgumentsAreRejected) {
  const std::string rebuild = global("torch._utils", "_rebuild_tensor_v2");
  const std::string pid = storage_pid("FloatStorage", "0", 4);
  EXPECT_LOAD_ERROR(kProto2 + rebuild + "(" + pid + integer(0) + tuple({4}) + "t" + "R.", "with 3 arguments");
  EXPECT_LOAD_ERROR(kProto2 + rebuild + "(N" + integer(0) + tuple({4}) + tuple({1}) + "\x89}tR.", "not a storage");
  EXPECT_LOAD_ERROR(kProto2 + rebuild + "(" + pid + integer(0) + tuple({2, 2}) + tuple({1}) + "\x89}tR.",
                    "size has 2 dims but its stride has 1");
  EXPECT_LOAD_ERROR(kProto2 + rebuild + "(" + pid + integer(0) + tuple({-2}) + tuple({1}) + "\x89}tR.",
                    "negative entry");
  EXPECT_LOAD_ERROR(kProto2 + rebuild + "(" + pid + "J" + le(static_cast<uint32_t>(-1), 4) + tuple({2}) +
                        tuple({1}) + "\x89}tR.",
                    "negative storage offset");
  EXPECT_LOAD_ERROR(kProto2 + rebuild + "(" + pid + integer(0) + str("4") + tuple({1}) + "\x89}tR.", "not a tuple");
  EXPECT_LOAD_ERROR(kProto2 + global("torch._utils", "_rebuild_parameter") + "(N\x88}tR.", "needs a tensor");
}

TEST(Unpickle, AllowedCallablesBuildPlainValues) {
  const std::string bytes = kProto2 + "(" + global("collections", "OrderedDict") + "(](" + str("k") + integer(5) +
                            "tatR" + global("torch", "Size") + "(" + tuple({3, 4}) + "tR" +
                            global("builtins", "frozenset") + "(](K\x01K\x02" "etR" + global("__builtin__", "set") +
                            ")R" + global("torch", "float16") + "l.";
  const PickleDocument doc = parse(bytes);
  const auto& items = doc.root().items;
  ASSERT_EQ(items.size(), 5u);
  ASSERT_EQ(items[0]->kind, PickleKind::Dict);
  EXPECT_EQ(items[0]->get("k")->integer, 5);
  ASSERT_EQ(items[1]->kind, PickleKind::Tuple);
  EXPECT_EQ(items[1]->items[1]->integer, 4);
  EXPECT_EQ(items[2]->kind, PickleKind::Set);
  EXPECT_EQ(items[2]->items.size(), 2u);
  EXPECT_EQ(items[3]->kind, PickleKind::Set);
  EXPECT_EQ(items[4]->kind, PickleKind::Global);
  EXPECT_EQ(items[4]->text, "torch.float16");
  EXPECT_LOAD_ERROR(kProto2 + global("torch", "float16") + ")R.", "cannot be called");
  EXPECT_LOAD_ERROR(kProto2 + global("torch", "FloatStorage") + ")R.", "cannot be called");
}

// numpy.core.multiarray.scalar(numpy.dtype('f8', False, True), _codecs.encode('...', 'latin1')),
// as Lightning writes best_model_score: an opaque object that keeps nothing.
TEST(Unpickle, InertDataClassesBecomeOpaqueObjects) {
  const std::string dtype = global("numpy", "dtype") + "(" + str("f8") + "\x89\x88tR" + "(K\x03" + str("<") +
                            "NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"s;
  const std::string raw = global("_codecs", "encode") + "(" + str("\x00\x00\x00\x00\x00\x00\xc0\x3f"s) +
                          str("latin1") + "tR";
  const std::string bytes = kProto2 + global("numpy.core.multiarray", "scalar") + "(" + dtype + raw + "tR.";
  const PickleDocument doc = parse(bytes);
  EXPECT_EQ(doc.root().kind, PickleKind::Object);
  EXPECT_EQ(doc.root().text, "numpy.core.multiarray.scalar");
  EXPECT_TRUE(doc.root().items.empty());
  EXPECT_TRUE(doc.root().entries.empty());
  // NEWOBJ of the Lightning callback class, with its state.
  const std::string cb = kProto2 + global("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint") + ")\x81}b.";
  EXPECT_EQ(parse(cb).root().kind, PickleKind::Object);
}

// ---- Forbidden globals: rejected by name, and nothing runs -------------------------------------

struct Payload {
  std::string module, name;
  std::string args;  // pickled argument tuple
};

std::vector<Payload> payloads(const std::string& marker) {
  const std::string touch = "touch " + marker;
  return {
      {"os", "system", "(" + str(touch) + "t"},
      {"posix", "system", "(" + str(touch) + "t"},
      {"nt", "system", "(" + str(touch) + "t"},
      {"builtins", "eval", "(" + str("__import__('os').system('" + touch + "')") + "t"},
      {"builtins", "exec", "(" + str("import os; os.system('" + touch + "')") + "t"},
      {"__builtin__", "eval", "(" + str("__import__('os').system('" + touch + "')") + "t"},
      {"subprocess", "Popen", "((" + str("touch") + str(marker) + "lt"},
      {"subprocess", "call", "((" + str("touch") + str(marker) + "lt"},
      {"builtins", "getattr", "(" + str("os") + str("system") + "t"},
      {"torch", "load", "(" + str(marker) + "t"},
      {"collections", "namedtuple", "(" + str("x") + str("a") + "t"},
  };
}

std::string via_global(const Payload& p) { return kProto2 + global(p.module, p.name) + p.args + "R."; }
std::string via_stack_global(const Payload& p) {
  return "\x80\x04" + short_str(p.module) + short_str(p.name) + "\x93" + p.args + "R.";
}
std::string via_inst(const Payload& p) {
  return "(" + p.args.substr(1, p.args.size() - 2) + "i" + p.module + "\n" + p.name + "\n.";
}

TEST(Unpickle, ForbiddenGlobalsAreRejectedByNameAndNothingRuns) {
  test::TempDir dir;
  const std::string marker = dir.file("marker");
  for (const Payload& p : payloads(marker)) {
    const std::string expected = "forbidden global '" + p.module + "." + p.name + "' in pickle";
    for (const std::string& bytes : {via_global(p), via_stack_global(p), via_inst(p)}) {
      const std::string message = load_error(bytes);
      EXPECT_NE(message.find(expected), std::string::npos) << message;
      EXPECT_NE(message.find("only tensors, dicts, lists and plain values"), std::string::npos) << message;
    }
    // Inside a state dict, after a valid tensor.
    const std::string nested = kProto2 + "}(" + str("w") + tensor("0", {2}) + str("x") + global(p.module, p.name) +
                               p.args + "Ru.";
    EXPECT_NE(load_error(nested).find(expected), std::string::npos);
  }
  EXPECT_FALSE(std::filesystem::exists(marker));
}

// The payloads above are live: Python's own unpickler runs them. (Skipped without python3.)
TEST(Unpickle, ThePayloadsWouldRunUnderPython) {
  if (test::run_command("python3 -c pass").exit_code != 0) GTEST_SKIP() << "no python3";
  test::TempDir dir;
  int checked = 0;
  for (const Payload& p : payloads(dir.file("marker"))) {
    // nt is Windows-only, Popen returns before its child has run, the others do not write files.
    const std::string name = p.module + "." + p.name;
    if (p.module == "nt" || p.module == "torch" || name == "builtins.getattr" || name == "subprocess.Popen" ||
        name == "collections.namedtuple")
      continue;
    std::vector<std::string> variants{via_global(p)};
    if (p.module != "__builtin__") variants.push_back(via_stack_global(p));  // Python 2 names: protocol < 3 only
    for (const std::string& bytes : variants) {
      std::filesystem::remove(dir.file("marker"));
      test::write_bytes(dir.file("payload.pkl"), bytes);
      test::run_command("python3 -c \"import pickle,sys; pickle.loads(open(sys.argv[1],'rb').read())\" " +
                        test::shell_quote(dir.file("payload.pkl")));
      EXPECT_TRUE(std::filesystem::exists(dir.file("marker"))) << name;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 11);
}

// ---- Broken and hostile input -----------------------------------------------------------------

TEST(Unpickle, EveryTruncationOfARealPickleIsALoadError) {
  for (const char* seed : {"state_dict.pkl", "lightning.pkl", "nested.pkl", "legacy.pkl"}) {
    const std::string dir = std::string(GENVIS_SOURCE_DIR) + "/fuzz/corpus/unpickler/";
    const std::string bytes = test::read_bytes(dir + seed);
    ASSERT_GT(bytes.size(), 100u) << seed;
    EXPECT_EQ(load_error(bytes), "") << seed;
    for (size_t n = 0; n < bytes.size(); ++n) {
      const std::string message = load_error(bytes.substr(0, n));
      EXPECT_NE(message.find("test.pkl: "), std::string::npos) << seed << " cut at " << n << ": " << message;
    }
  }
}

TEST(Unpickle, MemoErrors) {
  EXPECT_LOAD_ERROR(kProto2 + "]q\x00h\x07."s, "memo index 7 is not defined");
  EXPECT_LOAD_ERROR(kProto2 + "]j" + le(0xFFFFFFFF, 4) + ".", "memo index 4294967295 is not defined");
  EXPECT_LOAD_ERROR("g12\n.", "memo index 12 is not defined");
  EXPECT_LOAD_ERROR(kProto2 + "q\x00."s, "stack underflow");
  UnpickleLimits limits;
  limits.max_memo = 3;
  EXPECT_NE(load_error(kProto2 + "N\x94\x94\x94\x94.", limits).find("memo larger than 3"), std::string::npos);
  // Sparse indices cost one entry each, not the index value.
  EXPECT_EQ(parse(kProto2 + "Nr" + le(0xFFFFFFF0, 4) + "0j" + le(0xFFFFFFF0, 4) + ".").root().kind, PickleKind::None);
}

TEST(Unpickle, AbsurdLengthsAreRejectedBeforeAllocating) {
  EXPECT_LOAD_ERROR(kProto2 + "X" + le(0xFFFFFFFF, 4) + "abc.", "runs past the end");
  EXPECT_LOAD_ERROR(kProto2 + "\x8d" + le(uint64_t(1) << 62, 8) + ".", "runs past the end");
  EXPECT_LOAD_ERROR(kProto2 + "\x8e" + le(~uint64_t(0), 8) + ".", "runs past the end");
  EXPECT_LOAD_ERROR(kProto2 + "\x8b" + le(0x7FFFFFFF, 4) + ".", "runs past the end");
  EXPECT_LOAD_ERROR(kProto2 + "\x8b" + le(0x80000000, 4) + ".", "negative length");
  EXPECT_LOAD_ERROR(kProto2 + "T" + le(0xFFFFFFFE, 4) + ".", "negative length");
  EXPECT_LOAD_ERROR("\x80\x04\x95" + le(uint64_t(1) << 40, 8) + "N.", "frame of");
  EXPECT_LOAD_ERROR(kProto2 + "cos\nsys", "unterminated text argument");
}

TEST(Unpickle, DeepNestingIsBoundedAndNeverRecurses) {
  // 200000 nested tuples: built without recursion, refused by the walker.
  const std::string deep = kProto2 + "N" + std::string(200000, '\x85') + ".";
  const PickleDocument doc = parse(deep);
  EXPECT_EQ(doc.root().kind, PickleKind::Tuple);
  EXPECT_NE(load_error(deep).find("nested deeper than 1000 levels"), std::string::npos);
  EXPECT_LOAD_ERROR(kProto2 + std::string(5000, '(') + ".", "MARKs nested deeper than 1000");
  // A list that contains itself, and a dict whose value is the dict itself.
  EXPECT_LOAD_ERROR(kProto2 + "]q\x00h\x00" "a."s, "nested deeper");
  EXPECT_LOAD_ERROR(kProto2 + "}q\x00"s + str("a") + "h\x00s."s, "nested deeper");
  // A DAG whose every level references the next twice: 2^40 paths, bounded visits.
  std::string dag = kProto2 + tensor("0", {1}) + "q\x00"s;
  for (int i = 0; i < 40; ++i) dag += "h\x00h\x00\x86q\x00"s;
  EXPECT_LOAD_ERROR(dag + "h\x00."s, "object graph too large");
}

TEST(Unpickle, SizeLimitsAreEnforced) {
  UnpickleLimits limits;
  limits.max_values = 1000;
  std::string many = kProto2 + "]";
  for (int i = 0; i < 600; ++i) many += "Na";
  EXPECT_NE(load_error(many + ".", limits).find("more than 1000 values"), std::string::npos);
  limits = {};
  limits.max_stack = 100;
  EXPECT_NE(load_error(kProto2 + std::string(101, 'N') + ".", limits).find("stack deeper than 100"), std::string::npos);
  EXPECT_EQ(load_error(kProto2 + "(" + std::string(99, 'N') + "l.", limits), "");
}

TEST(Unpickle, StackAndMarkMisuse) {
  EXPECT_LOAD_ERROR("", "data ends before STOP");
  EXPECT_LOAD_ERROR(kProto2, "data ends before STOP");
  EXPECT_LOAD_ERROR(kProto2 + ".", "stack underflow");
  EXPECT_LOAD_ERROR(kProto2 + "a.", "stack underflow");
  EXPECT_LOAD_ERROR(kProto2 + "](a.", "stack underflow");  // items below a MARK are out of reach
  EXPECT_LOAD_ERROR(kProto2 + "N(.", "stack underflow");
  EXPECT_LOAD_ERROR(kProto2 + "Nu.", "no MARK");
  EXPECT_LOAD_ERROR(kProto2 + "1.", "no MARK");
  EXPECT_LOAD_ERROR(kProto2 + "t.", "no MARK");
  EXPECT_LOAD_ERROR(kProto2 + "}(Ne.", "APPENDS needs a list but found a dict");
  EXPECT_LOAD_ERROR(kProto2 + "](NNNu.", "needs a dict but found a list");
  EXPECT_LOAD_ERROR(kProto2 + "}(NNNu.", "odd number of items");
  EXPECT_LOAD_ERROR(kProto2 + "(N" + "d.", "odd number of items");
  EXPECT_LOAD_ERROR(kProto2 + "NNs.", "stack underflow");
  EXPECT_LOAD_ERROR(kProto2 + "N)R.", "REDUCE on a None");
  EXPECT_LOAD_ERROR(kProto2 + kEmptyOrderedDict + "NR.", "REDUCE arguments are a None");
  EXPECT_LOAD_ERROR(kProto2 + "]Nb.", "BUILD on a list");
  EXPECT_LOAD_ERROR(kProto2 + "NN\x93.", "STACK_GLOBAL of non-strings");
  EXPECT_LOAD_ERROR(kProto2 + "o.", "no MARK");
  EXPECT_LOAD_ERROR(kProto2 + "(o.", "OBJ without a class");
  EXPECT_EQ(load_error(kProto2 + global("collections", "OrderedDict") + ")}\x92."), "");
  EXPECT_LOAD_ERROR(kProto2 + global("collections", "OrderedDict") + ")}K\x01K\x01s\x92.", "keyword arguments");
  EXPECT_LOAD_ERROR(kProto2 + "\xff.", "unknown opcode 0xff");
  EXPECT_LOAD_ERROR("\x80\x06N.", "unsupported pickle protocol 6");
  EXPECT_LOAD_ERROR(kProto2 + "\x82\x01.", "extension registry");
  EXPECT_LOAD_ERROR("\x80\x05\x97.", "out-of-band buffers");
  // POP at a mark pops the mark; DUP and POP_MARK.
  EXPECT_EQ(parse(kProto2 + "K\x05(0.").root().integer, 5);
  EXPECT_EQ(parse(kProto2 + "K\x05\x32\x86.").root().items[1]->integer, 5);
  EXPECT_EQ(parse(kProto2 + "K\x06(NN1.").root().integer, 6);
}

TEST(Unpickle, ConsumedStopsAtTheFirstStop) {
  const std::string bytes = kProto2 + "K\x01." + kProto2 + "K\x02.";
  const PickleDocument doc = parse(bytes);
  EXPECT_EQ(doc.root().integer, 1);
  EXPECT_EQ(doc.consumed(), 5u);
}

// ---- The checkpoint index ---------------------------------------------------------------------

TEST(CheckpointIndex, FlattensNestedDictsListsAndIntKeys) {
  const std::string bytes = kProto2 + "}(" + str("model") + "}(" + str("enc") + "}(" + str("w") + tensor("0", {2}) +
                            "uu" + str("blocks") + "(" + tensor("1", {1}) + "}(" + str("b") + tensor("2", {3}) +
                            "ul" + "K\x03" + tensor("3", {}) + str("step") + "K\x05" + str("lr") +
                            "G\x3f\x1a\x36\xe2\xeb\x1c\x43\x2d" + str("name") + str("emb") + str("ema") + "\x88" +
                            str("none") + "N" + "u.";
  const PickleDocument doc = parse(bytes);
  const CheckpointIndex index = index_checkpoint(doc, "test.pkl");
  ASSERT_EQ(index.tensors.size(), 4u);
  EXPECT_EQ(index.tensors[0].name, "model.enc.w");
  EXPECT_EQ(index.tensors[1].name, "blocks.0");
  EXPECT_EQ(index.tensors[2].name, "blocks.1.b");
  EXPECT_EQ(index.tensors[3].name, "3");
  EXPECT_EQ(index.tensors[2].ref.storage.key, "2");
  EXPECT_EQ(index.tensors[2].ref.size, (std::vector<int64_t>{3}));
  EXPECT_EQ(index.tensors[3].ref.size, (std::vector<int64_t>{}));
  const std::map<std::string, std::string> expected{{"step", "5"}, {"lr", "0.0001"}, {"name", "emb"}, {"ema", "True"}};
  EXPECT_EQ(index.metadata, expected);
}

TEST(CheckpointIndex, LightningStateDictBecomesTheRoot) {
  const std::string bytes = kProto2 + "}(" + str("epoch") + "K\x06" + str("global_step") + "J" + le(470000, 4) +
                            str("state_dict") + kEmptyOrderedDict + "(" + str("model.w") + tensor("0", {2, 2}) + "u" +
                            str("optimizer_states") + "(}(" + str("exp_avg") + tensor("1", {2, 2}) + "ul" +
                            str("callbacks") + "}(" +
                            global("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint") + "}u" + "u.";
  const PickleDocument doc = parse(bytes);
  const CheckpointIndex index = index_checkpoint(doc, "test.pkl");
  ASSERT_EQ(index.tensors.size(), 1u);
  EXPECT_EQ(index.tensors[0].name, "model.w");
  const std::map<std::string, std::string> expected{{"epoch", "6"}, {"global_step", "470000"}};
  EXPECT_EQ(index.metadata, expected);
}

TEST(CheckpointIndex, RejectsDuplicatesBadViewsAndUnnameableTensors) {
  EXPECT_LOAD_ERROR(kProto2 + "}(" + str("a.b") + tensor("0", {1}) + str("a") + "}(" + str("b") + tensor("1", {1}) +
                        "uu.",
                    "'a.b': duplicate tensor name");
  EXPECT_LOAD_ERROR(kProto2 + "}(" + str("w") + tensor("FloatStorage", "0", 4, 0, {2, 3}, {3, 1}) + "u.",
                    "'w': view [2, 3] with stride [3, 1] at offset 0 needs 6 elements but storage '0' has 4");
  EXPECT_LOAD_ERROR(kProto2 + "}(" + str("w") + tensor("FloatStorage", "0", 4, 3, {2}, {1}) + "u.",
                    "'w': view [2] with stride [1] at offset 3 needs 5 elements");
  EXPECT_LOAD_ERROR(kProto2 + "}(" + global("torch", "Size") + tensor("0", {1}) + "u.",
                    "tensor under a dict key that is not a string or an int");
  EXPECT_LOAD_ERROR(kProto2 + "N.", "the checkpoint holds a None, not a dict of tensors");
  EXPECT_LOAD_ERROR(kProto2 + "}(" + str(std::string(5000, 'k')) + tensor("0", {1}) + "u.", "longer than 4096");
  // A key set twice in one dict (torch never writes that) is a duplicate, not an overwrite.
  EXPECT_LOAD_ERROR(kProto2 + "}(" + str("w") + tensor("0", {1}) + str("w") + tensor("1", {1}) + "u.",
                    "'w': duplicate tensor name");
}

TEST(CheckpointIndex, ViewChecks) {
  TensorRef t;
  t.storage.key = "0";
  t.storage.numel = t.storage.view_numel = 12;
  t.size = {3, 4};
  t.stride = {4, 1};
  EXPECT_NO_THROW(check_tensor_view(t, "f", "t"));
  t.storage_offset = 1;
  EXPECT_THROW(check_tensor_view(t, "f", "t"), LoadError);
  t.storage_offset = 0;
  t.size = {4, 3};
  t.stride = {1, 4};  // transposed
  EXPECT_NO_THROW(check_tensor_view(t, "f", "t"));
  t.size = {1000, 12};
  t.stride = {0, 1};  // expanded
  EXPECT_NO_THROW(check_tensor_view(t, "f", "t"));
  t.size = {0, 5};
  t.stride = {5, 1};
  t.storage_offset = 12;  // empty views may sit at the end
  EXPECT_NO_THROW(check_tensor_view(t, "f", "t"));
  t.storage_offset = 13;
  EXPECT_THROW(check_tensor_view(t, "f", "t"), LoadError);
  t.storage_offset = 0;
  t.size = {2, 2};
  t.stride = {int64_t(1) << 62, int64_t(1) << 62};  // overflows 64 bits
  EXPECT_THROW(check_tensor_view(t, "f", "t"), LoadError);
  t.size = {int64_t(1) << 40, int64_t(1) << 40};
  t.stride = {1, 1};
  EXPECT_THROW(check_tensor_view(t, "f", "t"), LoadError);
}

TEST(LegacyMagic, RecognisesThePickledMagicNumber) {
  // pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2) and protocol=4 (framed).
  const std::string magic = "\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
  const std::string p2 = kProto2 + magic;
  const std::string p4 = "\x80\x04\x95" + le(13, 8) + magic;
  EXPECT_EQ(legacy_magic_length(reinterpret_cast<const uint8_t*>(p2.data()), p2.size()), 15u);
  EXPECT_EQ(legacy_magic_length(reinterpret_cast<const uint8_t*>(p4.data()), p4.size()), 24u);
  EXPECT_EQ(legacy_magic_length(reinterpret_cast<const uint8_t*>(p2.data()), 14), 0u);
  const std::string other = kProto2 + "\x8a\x0a" + std::string(10, '\0') + ".";
  EXPECT_EQ(legacy_magic_length(reinterpret_cast<const uint8_t*>(other.data()), other.size()), 0u);
}

}  // namespace
}  // namespace genvis::io
