// libgenvis_sentencepiece.so: Debian's libsentencepiece behind the C interface of
// tokenizers/sentencepiece_abi.h. Built as a module that links neither libtorch nor the genvis
// layers; tokenizers/sentencepiece_model.cpp opens it with dlopen(RTLD_LOCAL | RTLD_DEEPBIND).
#include "tokenizers/sentencepiece_abi.h"

#include <sentencepiece_processor.h>

#include <exception>
#include <string>
#include <string_view>
#include <type_traits>

#define GENVIS_SPM_EXPORT __attribute__((visibility("default")))

struct genvis_spm {
  sentencepiece::SentencePieceProcessor processor;
};

namespace {

void report(genvis_spm_error_fn on_error, void* context, const std::string& message) {
  if (on_error) on_error(context, message.c_str());
}

}  // namespace

extern "C" {

GENVIS_SPM_EXPORT int genvis_spm_abi_version(void) { return kGenvisSpmAbiVersion; }

GENVIS_SPM_EXPORT genvis_spm* genvis_spm_load(const char* bytes, size_t size, genvis_spm_error_fn on_error,
                                              void* error_context) {
  try {
    auto* model = new genvis_spm;
    const auto status = model->processor.LoadFromSerializedProto(std::string_view(bytes, size));
    if (!status.ok()) {
      report(on_error, error_context, status.ToString());
      delete model;
      return nullptr;
    }
    return model;
  } catch (const std::exception& e) {
    report(on_error, error_context, e.what());
  } catch (...) {
    report(on_error, error_context, "unknown exception in libsentencepiece");
  }
  return nullptr;
}

GENVIS_SPM_EXPORT void genvis_spm_free(genvis_spm* model) { delete model; }

GENVIS_SPM_EXPORT int genvis_spm_piece_size(const genvis_spm* model) { return model->processor.GetPieceSize(); }

GENVIS_SPM_EXPORT int genvis_spm_piece_to_id(const genvis_spm* model, const char* piece, size_t size) {
  return model->processor.PieceToId(std::string_view(piece, size));
}

GENVIS_SPM_EXPORT const char* genvis_spm_id_to_piece(const genvis_spm* model, int id, size_t* size) {
  if (id < 0 || id >= model->processor.GetPieceSize()) return nullptr;
  const std::string& piece = model->processor.IdToPiece(id);
  *size = piece.size();
  return piece.data();
}

GENVIS_SPM_EXPORT int genvis_spm_encode(const genvis_spm* model, const char* text, size_t size,
                                        genvis_spm_piece_fn emit, void* emit_context, genvis_spm_error_fn on_error,
                                        void* error_context) {
  try {
    sentencepiece::ImmutableSentencePieceText encoded;
    const auto status = model->processor.Encode(std::string_view(text, size), encoded.mutable_proto());
    if (!status.ok()) {
      report(on_error, error_context, status.ToString());
      return 1;
    }
    for (const auto& piece : encoded.pieces())
      emit(emit_context, piece.piece().data(), piece.piece().size(), static_cast<int>(piece.id()));
    return 0;
  } catch (const std::exception& e) {
    report(on_error, error_context, e.what());
  } catch (...) {
    report(on_error, error_context, "unknown exception in libsentencepiece");
  }
  return 1;
}

}  // extern "C"

// The exported functions have exactly the types the loader casts them to.
static_assert(std::is_same_v<decltype(&genvis_spm_abi_version), genvis_spm_abi_version_fn>);
static_assert(std::is_same_v<decltype(&genvis_spm_load), genvis_spm_load_fn>);
static_assert(std::is_same_v<decltype(&genvis_spm_free), genvis_spm_free_fn>);
static_assert(std::is_same_v<decltype(&genvis_spm_piece_size), genvis_spm_piece_size_fn>);
static_assert(std::is_same_v<decltype(&genvis_spm_piece_to_id), genvis_spm_piece_to_id_fn>);
static_assert(std::is_same_v<decltype(&genvis_spm_id_to_piece), genvis_spm_id_to_piece_fn>);
static_assert(std::is_same_v<decltype(&genvis_spm_encode), genvis_spm_encode_fn>);
