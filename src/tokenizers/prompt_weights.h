// AUTOMATIC1111 prompt emphasis: "(word)" x1.1, "[word]" /1.1, "(word:1.3)", "\(" escapes, BREAK,
// long prompts in several 77-token chunks, and the "Original" emphasis applied to embeddings.
//
//   auto parsed = parse_prompt_attention("a (red:1.2) car");  // {"a ",1}, {"red",1.2}, {" car",1}
//   WeightedTokens wt = tokenize_weighted(tokenizer, "a (red:1.2) car BREAK blue sky");
//   // wt.chunks[i] / wt.weights[i]: 77 ids / 77 multipliers; BOS, EOS and padding weigh 1.0
//   at::Tensor z = apply_emphasis(text_encoder_output /*[B,77*n,C]*/, weights /*[B,77*n]*/);
#pragma once
#include "tokenizers/clip_tokenizer.h"
#include "tokenizers/embedding_tokens.h"

#include <ATen/ATen.h>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace genvis::tokenizers {

// modules/prompt_parser.parse_prompt_attention: text pieces with their multipliers, runs of equal
// weight merged. "BREAK" (a separate word) becomes its own ("BREAK", -1) entry. Unbalanced
// brackets close at the end of the prompt. Throws UsageError for a weight Python's float()
// rejects, e.g. "(a:1.2.3)".
std::vector<std::pair<std::string, float>> parse_prompt_attention(std::string_view text);

struct WeightedTokens {
  std::vector<std::vector<int64_t>> chunks;   // each [BOS] + 75 tokens + [EOS], padded: 77 ids
  std::vector<std::vector<float>> weights;    // per token multiplier, 1.0 for BOS/EOS/padding
  int64_t token_count = 0;                    // A1111's count (75 per full chunk + the last one's tokens)
};

struct ChunkOptions {
  // Ids after a chunk's first EOS (SD1/CLIP-L: EOS 49407; OpenCLIP/SDXL tokenizer_2: 0).
  int64_t pad_id = CLIPTokenizer::kEosId;
  // opts.comma_padding_backtrack: when a chunk fills up, the tokens after the last comma within
  // this many tokens move to the next chunk; 0 disables it.
  int comma_padding_backtrack = 20;
  // Whether to parse emphasis at all (A1111 opts.emphasis == "None" -> false).
  bool emphasis = true;
  // Textual-inversion names to replace by their vector ids (an embedding never straddles two
  // chunks: when it does not fit, the chunk is closed first, as A1111 does).
  const EmbeddingTokens* embeddings = nullptr;
};

// sd_hijack_clip.tokenize_line: a prompt (with emphasis syntax) as 77-token chunks. An empty
// prompt gives one chunk [BOS, EOS, pad...].
WeightedTokens tokenize_weighted(const CLIPTokenizer& tokenizer, std::string_view prompt,
                                 const ChunkOptions& options = {});

// A1111 "Original" emphasis, chunk by chunk (A1111 encodes one 77-token chunk of the whole batch at
// a time): for each chunk c, z_c = z_c * w_c[..., None]; z_c *= mean_before / mean_after, the means
// taken over the whole [B,77,C] chunk. embeddings [B,T,C], weights [B,T], T a multiple of
// chunk_length; returns [B,T,C] (dtype promoted as torch does, e.g. fp16 z * fp32 w -> fp32).
at::Tensor apply_emphasis(const at::Tensor& embeddings, const at::Tensor& weights,
                          int64_t chunk_length = CLIPTokenizer::kMaxLength);

// chunks/weights as tensors: ids [n,77] int64 and multipliers [n,77] float32.
std::pair<at::Tensor, at::Tensor> to_tensors(const WeightedTokens& tokens);

}  // namespace genvis::tokenizers
