#include "models/damsm/damsm_loss.h"

#include "core/error.h"

#include <c10/util/StringUtil.h>
#include <limits>

namespace genvis::models::damsm {
namespace {

void check(bool ok, const std::string& what) {
  if (!ok) throw UsageError("damsm: " + what);
}

void check_words(const at::Tensor& words, const at::Tensor& word_mask) {
  check(words.dim() == 3, "words must be [B,D,T], got " + c10::str(words.sizes()));
  check(word_mask.dim() == 2 && word_mask.size(0) == words.size(0) && word_mask.size(1) == words.size(2) &&
            word_mask.scalar_type() == at::kBool,
        "word_mask must be bool [B,T] matching words " + c10::str(words.sizes()) + ", got " +
            c10::str(word_mask.sizes()));
  check(word_mask.any(1).all().item<bool>(), "every caption needs at least one word");
}

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

}  // namespace

WordAttention word_attention(const at::Tensor& words, const at::Tensor& word_mask, const at::Tensor& regions,
                             double gamma1) {
  check_words(words, word_mask);
  check(regions.dim() == 3 && regions.size(0) == words.size(0) && regions.size(1) == words.size(1),
        "regions must be [B,D,N] with the words' B and D, got " + c10::str(regions.sizes()));
  const at::Tensor s = at::bmm(words.transpose(1, 2), regions);                             // [B,T,N]
  const at::Tensor s_bar = s.masked_fill(word_mask.logical_not().unsqueeze(2), kNegInf).softmax(1);  // over words
  const at::Tensor alpha = (s_bar * gamma1).softmax(2);                                       // over regions
  return {at::bmm(regions, alpha.transpose(1, 2)), alpha};                                   // [B,D,T]
}

at::Tensor word_scores(const at::Tensor& words, const at::Tensor& word_mask, const at::Tensor& regions,
                       const Gammas& gammas) {
  check_words(words, word_mask);
  check(regions.dim() == 3 && regions.size(1) == words.size(1),
        "regions must be [B,D,N] with the words' D, got " + c10::str(regions.sizes()));
  const int64_t bc = words.size(0), t = words.size(2);
  // Every (caption i, image j) pair at once, without copying the regions per pair.
  const at::Tensor s = at::einsum("idt,jdn->ijtn", {words, regions});                         // [Bc,Bi,T,N]
  const at::Tensor real = word_mask.view({bc, 1, t, 1});
  const at::Tensor s_bar = s.masked_fill(real.logical_not(), kNegInf).softmax(2);               // over words
  const at::Tensor alpha = (s_bar * gammas.gamma1).softmax(3);                                 // over regions
  const at::Tensor c = at::einsum("ijtn,jdn->ijdt", {alpha, regions});                         // [Bc,Bi,D,T]
  const at::Tensor e = words.unsqueeze(1);                                                     // [Bc,1,D,T]
  const at::Tensor cosine = (c * e).sum(2) / (c.norm(2, 2) * e.norm(2, 2)).clamp_min(1e-8);    // [Bc,Bi,T]
  return (cosine * gammas.gamma2).masked_fill(word_mask.unsqueeze(1).logical_not(), kNegInf).logsumexp(2) /
         gammas.gamma2;
}

at::Tensor sentence_scores(const at::Tensor& sentences, const at::Tensor& images) {
  check(sentences.dim() == 2 && images.dim() == 2 && sentences.size(1) == images.size(1),
        "sentences [Bc,D] and images [Bi,D] must share D, got " + c10::str(sentences.sizes()) + " and " +
            c10::str(images.sizes()));
  const at::Tensor s = sentences / sentences.norm(2, 1, true).clamp_min(1e-8);
  const at::Tensor i = images / images.norm(2, 1, true).clamp_min(1e-8);
  return s.matmul(i.t());
}

at::Tensor matching_loss(const at::Tensor& scores, double gamma3, const std::optional<at::Tensor>& same) {
  check(scores.dim() == 2 && scores.size(0) == scores.size(1), "scores must be square [B,B], got " + c10::str(scores.sizes()));
  at::Tensor logits = scores * gamma3;
  if (same) {
    check(same->sizes() == scores.sizes() && same->scalar_type() == at::kBool, "same must be bool [B,B]");
    logits = logits.masked_fill(*same & at::eye(scores.size(0), same->options()).logical_not(), kNegInf);
  }
  const at::Tensor target = at::arange(scores.size(0), scores.options().dtype(at::kLong));
  // Rows: captions over images (P(D|Q)); columns: images over captions (P(Q|D)).
  return at::cross_entropy_loss(logits, target) + at::cross_entropy_loss(logits.t(), target);
}

at::Tensor same_caption_mask(const at::Tensor& caption_ids) {
  check(caption_ids.dim() == 1, "caption_ids must be [B]");
  const at::Tensor same = caption_ids.unsqueeze(0) == caption_ids.unsqueeze(1);
  return same & at::eye(caption_ids.size(0), same.options()).logical_not();
}

}  // namespace genvis::models::damsm
