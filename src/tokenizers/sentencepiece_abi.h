// The C interface of the SentencePiece module (libgenvis_sentencepiece.so), shared by the module
// and its loader (sentencepiece_model.cpp). Only plain C types cross it, so the module's own copy
// of protobuf never meets libtorch's (see sentencepiece_model.h). Bump kGenvisSpmAbiVersion on
// any change.
#pragma once
#include <cstddef>

extern "C" {

inline constexpr int kGenvisSpmAbiVersion = 1;

struct genvis_spm;  // a loaded sentencepiece::SentencePieceProcessor

// Called with a NUL-terminated message when a call fails.
typedef void (*genvis_spm_error_fn)(void* context, const char* message);
// Called once per piece of an encoding, in order: the piece's text (not NUL-terminated) and id.
typedef void (*genvis_spm_piece_fn)(void* context, const char* piece, size_t size, int id);

typedef int (*genvis_spm_abi_version_fn)(void);
// A model from the bytes of a serialized ModelProto (a spiece.model file); null on failure.
typedef genvis_spm* (*genvis_spm_load_fn)(const char* bytes, size_t size, genvis_spm_error_fn on_error,
                                          void* error_context);
typedef void (*genvis_spm_free_fn)(genvis_spm* model);
typedef int (*genvis_spm_piece_size_fn)(const genvis_spm* model);
// SentencePieceProcessor::PieceToId: the unknown piece's id for a string that is no piece.
typedef int (*genvis_spm_piece_to_id_fn)(const genvis_spm* model, const char* piece, size_t size);
// SentencePieceProcessor::IdToPiece; the text lives as long as the model. Null for a bad id.
typedef const char* (*genvis_spm_id_to_piece_fn)(const genvis_spm* model, int id, size_t* size);
// SentencePieceProcessor::Encode into pieces and ids; 0 on success.
typedef int (*genvis_spm_encode_fn)(const genvis_spm* model, const char* text, size_t size, genvis_spm_piece_fn emit,
                                    void* emit_context, genvis_spm_error_fn on_error, void* error_context);

}  // extern "C"
