// Fréchet distance between two feature sets, each summarised by a Gaussian (mean, covariance):
// with Inception features it is FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale
// Update Rule Converge to a Local Nash Equilibrium").
//
//   GaussianStats real = gaussian_stats(real_features);   // [N,D] -> mu [D], sigma [D,D]
//   GaussianStats fake = gaussian_stats(fake_features);   // [M,D]
//   double fid = frechet_distance(real, fake);            // 0 for equal Gaussians, else > 0
//   double same = frechet_distance(real_features, fake_features);  // the same number
//
//   FID = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr sqrtm(S_a S_b)
//
// All arithmetic is in f64 on the CPU, whatever the features' dtype and device. sigma is the
// unbiased covariance (divides by N-1), as numpy.cov and the reference implementations
// (pytorch-fid, torch-fidelity, clean-fid) use, so statistics saved by them compare directly.
//
// tr sqrtm(S_a S_b) is computed without sqrtm of the non-symmetric product (scipy's sqrtm, which
// the references use, returns spurious imaginary parts and needs a retry with an added epsilon
// when S_a is singular). With R_a, R_b the symmetric PSD square roots (at::linalg_eigh, tiny
// negative eigenvalues clamped to 0): S_a S_b = R_a (R_a S_b) has the eigenvalues of
// (R_a S_b) R_a = (R_b R_a)^T (R_b R_a) (XY and YX share them), a PSD matrix whose eigenvalues'
// square roots are the singular values of R_b R_a; so
//   tr sqrtm(S_a S_b) = tr sqrt(R_a S_b R_a) = sum of the singular values of R_b R_a.
// The singular values are taken directly (not as square roots of eigenvalues of R_a S_b R_a),
// which keeps the error at the eps * |S| level: square roots of eigenvalues near 0 would turn an
// eps-sized error into a sqrt(eps)-sized one in every null direction (N < D sets are common).
//
// The result can be a rounding-sized negative number for (nearly) equal inputs; it is returned
// as computed, not clamped.
#pragma once
#include <ATen/ATen.h>
#include <cstdint>

namespace genvis::eval {

struct GaussianStats {
  at::Tensor mu;      // [D] f64, CPU
  at::Tensor sigma;   // [D,D] f64, CPU, unbiased (N-1), symmetric
  int64_t count = 0;  // N, the number of feature rows summarised
};

// features [N,D], any floating dtype and device. UsageError unless 2-D, floating and N >= 2.
GaussianStats gaussian_stats(const at::Tensor& features);

// UsageError when mu/sigma are not [D] and [D,D] or the two D differ.
double frechet_distance(const GaussianStats& a, const GaussianStats& b);

// frechet_distance(gaussian_stats(a), gaussian_stats(b)); a [N,D], b [M,D].
double frechet_distance(const at::Tensor& a, const at::Tensor& b);

// The symmetric PSD square root of a symmetric matrix s [D,D] (f64): V sqrt(max(w, 0)) V^T
// from s = V diag(w) V^T.
at::Tensor psd_sqrt(const at::Tensor& s);

}  // namespace genvis::eval
