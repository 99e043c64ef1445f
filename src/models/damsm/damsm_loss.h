// The Deep Attentional Multimodal Similarity Model's matching scores and losses (Xu et al. 2018,
// "AttnGAN", section 3.3). Pure functions over word, region, sentence and image features; the
// encoders that produce them are in damsm_model.h.
//
//   // words [B,D,T] with word_mask [B,T] (true = a real word), regions [B,D,N] (N = h*w)
//   at::Tensor r = damsm::word_scores(words, word_mask, regions, {});  // [B_caption, B_image]
//   at::Tensor s = damsm::sentence_scores(sentences, images, {});      // [B_caption, B_image]
//   at::Tensor loss = damsm::matching_loss(r, same) + damsm::matching_loss(s, same);
//
// Word level, for caption i and image j (eq. 7-10): s = e_i^T v_j (words x regions);
// s_bar = softmax over the caption's words of each region's scores; alpha = softmax over regions
// of gamma1 * s_bar for each word; c_t = sum_n alpha_tn v_n (the region context of word t);
// R(Q_j, D_i) = (1/gamma2) log sum_t exp(gamma2 cos(c_t, e_t)). The paper's form: AttnGAN's code
// leaves out the 1/gamma2, which only rescales the scores.
// Sentence level (eq. 12): R = cos(global image vector, sentence vector).
// Losses (eq. 11, 13): with P(D_i | Q_j) = softmax over captions of gamma3 R and P(Q_j | D_i) the
// softmax over images, -log of both at the matching pairs, averaged over the batch. Pairs marked
// `same` (another sample with the same caption: not a negative) are left out of both softmaxes,
// as AttnGAN does for samples of one class.
#pragma once
#include <ATen/ATen.h>
#include <optional>

namespace genvis::models::damsm {

struct Gammas {
  double gamma1 = 4.0;   // sharpness of the attention over regions
  double gamma2 = 5.0;   // how much the best-matching words dominate the word-level score
  double gamma3 = 10.0;  // the softmax temperature of the matching losses
};

struct WordAttention {
  at::Tensor context;    // [B,D,T]: each word's region context c_t
  at::Tensor attention;  // [B,T,N]: alpha, each word's weights over the regions (rows sum to 1)
};

// Attention of each caption's words over the regions of the image in the same row (eq. 7-9).
// words [B,D,T], word_mask bool [B,T] (at least one word per row), regions [B,D,N].
WordAttention word_attention(const at::Tensor& words, const at::Tensor& word_mask, const at::Tensor& regions,
                             double gamma1);

// R(Q_j, D_i) for every caption i and image j: [B_caption, B_image]. words [Bc,D,T], word_mask
// bool [Bc,T], regions [Bi,D,N].
at::Tensor word_scores(const at::Tensor& words, const at::Tensor& word_mask, const at::Tensor& regions,
                       const Gammas& gammas);

// cos(sentence_i, image_j): [B_caption, B_image]. sentences [Bc,D], images [Bi,D].
at::Tensor sentence_scores(const at::Tensor& sentences, const at::Tensor& images);

// -(mean log P(D_i|Q_i) + mean log P(Q_i|D_i)) for square scores [B,B] (caption x image, the
// match on the diagonal), scaled by gamma3. same: optional bool [B,B], true where caption i also
// describes image j (i != j); those pairs are not negatives.
at::Tensor matching_loss(const at::Tensor& scores, double gamma3, const std::optional<at::Tensor>& same = std::nullopt);

// Where captions i != j are the same text: bool [B,B] from a per-sample caption id [B] int64.
at::Tensor same_caption_mask(const at::Tensor& caption_ids);

}  // namespace genvis::models::damsm
