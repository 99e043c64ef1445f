// DALL·E's attention masks over one stream of text_len text tokens followed by rows x cols image
// tokens (raster order), and attention that computes only the blocks a mask allows.
//
//   DalleLayout layout{.text_len = 32, .rows = 16, .cols = 16, .conv_kernel = 7};
//   at::Tensor y = dalle_sparse_attention(q, k, v, /*heads=*/4, DalleAttention::Row, layout);
//
// Query i may attend key j only when j <= i, and then (p = i - text_len, q = j - text_len for
// image positions, (r, c) = (p / cols, p % cols)):
//   - a text query: every earlier text key (causal);
//   - an image query: every text key, and the image keys its layer's kind allows:
//       full:   all earlier image tokens;
//       row:    the previous `cols` image tokens (p - q <= cols), one row's worth: the Sparse
//               Transformer's local window, the paper's row attention;
//       column: the same column (p - q divisible by cols);
//       conv:   the causal part of a conv_kernel x conv_kernel neighbourhood (|r - r'| and
//               |c - c'| at most conv_kernel / 2).
// dalle_attention_mask builds that as a dense [L, L] matrix (the definition, for tests);
// dalle_sparse_attention never does for row, column and conv: rows attend two image rows,
// columns their own column, conv a gathered neighbourhood, each beside the text keys.
#pragma once
#include "models/dalle/dalle_config.h"

#include <torch/types.h>

namespace genvis::models {

struct DalleLayout {
  int64_t text_len = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t conv_kernel = 1;
  int64_t image_len() const { return rows * cols; }
  int64_t len() const { return text_len + image_len(); }
  static DalleLayout of(const DalleConfig& c) { return {c.text_len, c.image_rows, c.image_cols, c.conv_kernel}; }
};

// Whether query position i may attend key position j (the definition above).
bool dalle_may_attend(DalleAttention kind, const DalleLayout& layout, int64_t i, int64_t j);
// [L, L] bool: mask[i][j] = dalle_may_attend(kind, layout, i, j).
at::Tensor dalle_attention_mask(DalleAttention kind, const DalleLayout& layout);
// The key positions query i attends, ascending ([n] int64).
at::Tensor dalle_attended_positions(DalleAttention kind, const DalleLayout& layout, int64_t i);

// q, k, v [B, L, H*D] over the whole stream (L = layout.len()) -> [B, L, H*D].
at::Tensor dalle_sparse_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                                  DalleAttention kind, const DalleLayout& layout);

// One query q [B, 1, H*D] at position i against the keys/values of positions 0..i
// (k, v [B, >i, H*D], e.g. a KV cache) -> [B, 1, H*D].
at::Tensor dalle_query_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                                 DalleAttention kind, const DalleLayout& layout, int64_t i);

}  // namespace genvis::models
