#include "models/dalle/dalle_attention.h"

#include "core/error.h"
#include "nn/attention.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <torch/torch.h>

namespace genvis::models {
namespace {

constexpr float kBlocked = -std::numeric_limits<float>::infinity();

void check_stream(const at::Tensor& x, const DalleLayout& layout, const char* name) {
  if (x.dim() != 3 || x.size(1) != layout.len())
    throw UsageError(std::string("DALL·E attention: ") + name + " must be [B," + std::to_string(layout.len()) +
                     ",H*D], got " + c10::str(x.sizes()));
}

// An additive bias from a bool mask (true: attend).
at::Tensor bias_of(const at::Tensor& allowed) {
  return at::zeros(allowed.sizes(), at::kFloat).masked_fill(allowed.logical_not(), kBlocked);
}

// Image queries grouped by row: each row's W queries see the text and image rows r-1 and r.
at::Tensor row_attention(const at::Tensor& qi, const at::Tensor& kt, const at::Tensor& vt, const at::Tensor& ki,
                         const at::Tensor& vi, int64_t heads, const DalleLayout& l) {
  const int64_t B = qi.size(0), HD = qi.size(2), T = l.text_len, R = l.rows, W = l.cols;
  auto keys = [&](const at::Tensor& text, const at::Tensor& image) {
    const at::Tensor padded = at::cat({at::zeros({B, 1, W, HD}, image.options()), image.view({B, R, W, HD})}, 1);
    const at::Tensor two_rows = at::cat({padded.narrow(1, 0, R), padded.narrow(1, 1, R)}, 2);  // [B,R,2W,HD]
    return at::cat({text.unsqueeze(1).expand({B, R, T, HD}), two_rows}, 2).reshape({B * R, T + 2 * W, HD});
  };
  // Query (r, c) is image position p = rW + c; its image key a (of rows r-1 and r) is q = (r-1)W + a.
  const at::Tensor r = at::arange(R, at::kLong).view({R, 1, 1}), c = at::arange(W, at::kLong).view({1, W, 1});
  const at::Tensor a = at::arange(2 * W, at::kLong).view({1, 1, 2 * W});
  const at::Tensor p = r * W + c, q = (r - 1) * W + a;
  const at::Tensor image_ok = (q >= 0) & (p - q >= 0) & (p - q <= W);  // [R,W,2W]
  const at::Tensor allowed = at::cat({at::ones({R, W, T}, at::kBool), image_ok}, 2);
  const at::Tensor bias = bias_of(allowed).to(qi.device()).unsqueeze(0).expand({B, R, W, T + 2 * W})
                              .reshape({B * R, 1, W, T + 2 * W});
  const at::Tensor out = nn::attention(qi.reshape({B * R, W, HD}), keys(kt, ki), keys(vt, vi), heads, std::nullopt, bias);
  return out.view({B, R * W, HD});
}

// Image queries grouped by column: each column's R queries see the text and their own column.
at::Tensor column_attention(const at::Tensor& qi, const at::Tensor& kt, const at::Tensor& vt, const at::Tensor& ki,
                            const at::Tensor& vi, int64_t heads, const DalleLayout& l) {
  const int64_t B = qi.size(0), HD = qi.size(2), T = l.text_len, R = l.rows, W = l.cols;
  auto columns = [&](const at::Tensor& x) { return x.view({B, R, W, HD}).transpose(1, 2); };  // [B,W,R,HD]
  auto keys = [&](const at::Tensor& text, const at::Tensor& image) {
    return at::cat({text.unsqueeze(1).expand({B, W, T, HD}), columns(image)}, 2).reshape({B * W, T + R, HD});
  };
  const at::Tensor causal = at::ones({R, R}, at::kBool).tril();
  const at::Tensor allowed = at::cat({at::ones({R, T}, at::kBool), causal}, 1);
  const at::Tensor bias = bias_of(allowed).to(qi.device()).view({1, 1, R, T + R});
  const at::Tensor out =
      nn::attention(columns(qi).reshape({B * W, R, HD}), keys(kt, ki), keys(vt, vi), heads, std::nullopt, bias);
  return out.view({B, W, R, HD}).transpose(1, 2).reshape({B, R * W, HD});
}

// Image queries against the text and a gathered causal neighbourhood of (h + 1) x k image keys.
at::Tensor conv_attention(const at::Tensor& qi, const at::Tensor& kt, const at::Tensor& vt, const at::Tensor& ki,
                          const at::Tensor& vi, int64_t heads, const DalleLayout& l) {
  const int64_t B = qi.size(0), HD = qi.size(2), D = HD / heads, T = l.text_len, R = l.rows, W = l.cols;
  const int64_t N = R * W, h = l.conv_kernel / 2, k = 2 * h + 1, M = (h + 1) * k;
  // Neighbour m = (dr, dc) of query p = (r, c): image position (r - h + dr, c - h + dc).
  const at::Tensor p = at::arange(N, at::kLong).view({N, 1});
  const at::Tensor m = at::arange(M, at::kLong).view({1, M});
  const at::Tensor rr = p.div(W, "floor") - h + m.div(k, "floor"), cc = p.remainder(W) - h + m.remainder(k);
  const at::Tensor q = rr * W + cc;
  const at::Tensor valid = (rr >= 0) & (cc >= 0) & (cc < W) & (q <= p);  // [N,M]
  const at::Tensor index = at::where(valid, q, at::zeros_like(q)).flatten().to(qi.device());
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));

  const at::Tensor qh = qi.view({B, N, heads, D});
  const at::Tensor k_nb = ki.index_select(1, index).view({B, N, M, heads, D});
  const at::Tensor v_nb = vi.index_select(1, index).view({B, N, M, heads, D});
  const at::Tensor kth = kt.view({B, T, heads, D}).permute({0, 2, 3, 1});  // [B,H,D,T]
  const at::Tensor vth = vt.view({B, T, heads, D}).transpose(1, 2);        // [B,H,T,D]
  const at::Tensor s_text = at::matmul(qh.transpose(1, 2), kth).to(at::kFloat) * scale;                // [B,H,N,T]
  const at::Tensor s_nb = (qh.unsqueeze(2) * k_nb).sum(-1).permute({0, 3, 1, 2}).to(at::kFloat) * scale;  // [B,H,N,M]
  const at::Tensor nb_bias = bias_of(valid).to(qi.device());
  const at::Tensor prob = at::softmax(at::cat({s_text, s_nb + nb_bias}, -1), -1).to(qi.scalar_type());
  const at::Tensor out_text = at::matmul(prob.narrow(-1, 0, T), vth);  // [B,H,N,D]
  const at::Tensor out_nb = (prob.narrow(-1, T, M).permute({0, 2, 3, 1}).unsqueeze(-1) * v_nb).sum(2);  // [B,N,H,D]
  return (out_text.transpose(1, 2) + out_nb).reshape({B, N, HD});
}

}  // namespace

bool dalle_may_attend(DalleAttention kind, const DalleLayout& l, int64_t i, int64_t j) {
  if (j > i || j < 0) return false;
  if (i < l.text_len || j < l.text_len) return true;
  const int64_t p = i - l.text_len, q = j - l.text_len;
  switch (kind) {
    case DalleAttention::Full: return true;
    case DalleAttention::Row: return p - q <= l.cols;
    case DalleAttention::Column: return (p - q) % l.cols == 0;
    case DalleAttention::Conv: {
      const int64_t h = l.conv_kernel / 2;
      return std::abs(p / l.cols - q / l.cols) <= h && std::abs(p % l.cols - q % l.cols) <= h;
    }
  }
  return false;
}

at::Tensor dalle_attention_mask(DalleAttention kind, const DalleLayout& l) {
  const int64_t L = l.len();
  at::Tensor mask = at::zeros({L, L}, at::kBool);
  auto a = mask.accessor<bool, 2>();
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j <= i; ++j) a[i][j] = dalle_may_attend(kind, l, i, j);
  return mask;
}

at::Tensor dalle_attended_positions(DalleAttention kind, const DalleLayout& l, int64_t i) {
  std::vector<int64_t> positions;
  for (int64_t j = 0; j <= i; ++j)
    if (dalle_may_attend(kind, l, i, j)) positions.push_back(j);
  return at::tensor(positions, at::kLong);
}

at::Tensor dalle_sparse_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                                  DalleAttention kind, const DalleLayout& l) {
  check_stream(q, l, "q");
  check_stream(k, l, "k");
  check_stream(v, l, "v");
  const int64_t T = l.text_len, N = l.image_len();
  const at::Tensor qt = q.narrow(1, 0, T), kt = k.narrow(1, 0, T), vt = v.narrow(1, 0, T);
  const at::Tensor causal = bias_of(at::ones({T, T}, at::kBool).tril()).to(q.device());
  const at::Tensor text = nn::attention(qt, kt, vt, heads, std::nullopt, causal);
  if (N == 0) return text;
  const at::Tensor qi = q.narrow(1, T, N), ki = k.narrow(1, T, N), vi = v.narrow(1, T, N);
  at::Tensor image;
  switch (kind) {
    case DalleAttention::Full: {
      // Dense by definition: all earlier positions.
      const at::Tensor allowed = at::ones({N, l.len()}, at::kBool).tril(T);
      image = nn::attention(qi, k, v, heads, std::nullopt, bias_of(allowed).to(q.device()));
      break;
    }
    case DalleAttention::Row: image = row_attention(qi, kt, vt, ki, vi, heads, l); break;
    case DalleAttention::Column: image = column_attention(qi, kt, vt, ki, vi, heads, l); break;
    case DalleAttention::Conv: image = conv_attention(qi, kt, vt, ki, vi, heads, l); break;
  }
  return at::cat({text, image}, 1);
}

at::Tensor dalle_query_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                                 DalleAttention kind, const DalleLayout& l, int64_t i) {
  if (q.dim() != 3 || q.size(1) != 1) throw UsageError("DALL·E attention: the query must be [B,1,H*D]");
  if (i < 0 || i >= l.len() || k.size(1) <= i || v.size(1) <= i)
    throw UsageError("DALL·E attention: position " + std::to_string(i) + " is outside the keys");
  const at::Tensor index = dalle_attended_positions(kind, l, i).to(q.device());
  return nn::attention(q, k.index_select(1, index), v.index_select(1, index), heads);
}

}  // namespace genvis::models
