// A SentencePiece model (spiece.model) run by Debian's libsentencepiece.
//
//   auto sp = genvis::tokenizers::SentencePieceModel::load("tokenizer/spiece.model");
//   for (const auto& p : sp.encode("a photo of a cat")) std::cout << p.piece << " " << p.id << "\n";  // "▁a 263", ...
//
// Pitfall: Debian's libsentencepiece exports the protobuf-lite 3.14 it bundles, and libtorch loads
// protobuf 3.21; a process linking both crashes in protobuf's static initialisers (each library
// binds to the other's copy). So libsentencepiece is linked only into a small module,
// libgenvis_sentencepiece.so (tokenizers/sentencepiece/, C interface in sentencepiece_abi.h),
// opened on first use with dlopen(RTLD_LOCAL | RTLD_DEEPBIND): its protobuf stays out of the
// global scope and it binds to its own copy first. The module is looked for only at
// $GENVIS_SENTENCEPIECE_MODULE when that is set; else beside the executable and libgenvis, in
// lib/genvis of their prefix, where `cmake --install` puts it, and in the build tree.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct genvis_spm;

namespace genvis::tokenizers {

struct SentencePiece {
  std::string piece;  // "▁a", "<0x2F>" (byte fallback); the text itself for an unknown piece
  int64_t id = 0;
};

struct SentencePieceOptions {
  // Load with the model's normalizer_spec.add_dummy_prefix turned off, as transformers'
  // legacy=False T5 tokenizer does (the override is a second NormalizerSpec appended to the
  // serialized ModelProto, which protobuf merges into the first).
  bool disable_dummy_prefix = false;
};

class SentencePieceModel {
public:
  // LoadError naming the file when it is missing, unreadable or not a SentencePiece model, or
  // naming the module when that cannot be found or opened.
  static SentencePieceModel load(const std::string& path, const SentencePieceOptions& options = {});
  static SentencePieceModel from_bytes(std::string bytes, const std::string& source,
                                       const SentencePieceOptions& options = {});

  // SentencePieceProcessor::Encode (Python's sp.encode(text, out_type=str) and its ids).
  std::vector<SentencePiece> encode(std::string_view text) const;
  // GetPieceSize().
  int64_t size() const;
  // PieceToId: the unknown piece's id for a string that is no piece.
  int64_t piece_to_id(std::string_view piece) const;
  // IdToPiece; nullopt outside [0, size()).
  std::optional<std::string> id_to_piece(int64_t id) const;
  // Whether `piece` is one of the model's pieces.
  bool has_piece(std::string_view piece) const;
  const std::string& source() const { return source_; }

private:
  SentencePieceModel() = default;
  std::shared_ptr<genvis_spm> model_;
  std::string source_;
};

// The places the module is looked for, in order (the first existing file is opened).
std::vector<std::string> sentencepiece_module_candidates();

}  // namespace genvis::tokenizers
