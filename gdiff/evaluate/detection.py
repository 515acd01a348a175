"""Whole-genotype detection: can a classifier tell held-out real people from synthetic ones?

A cross-validated L2 logistic regression on standardised dosages plus the products
of standardised dosages of SNPs 1, 2 and 3 apart on the same chromosome (a linear
model on dosages alone cannot see LD; products of neighbours can). The AUC over all
out-of-fold scores is 0.5 when the two sets are indistinguishable; independent-SNP
data (real allele frequencies, no LD) scores near 1.

The recipe is shared with an external scorer, so keep it exact:
- balanced sets: n = min(n_real, n_synthetic) people each side (and at most
  `max_people`), seeded subsamples without replacement (`rng.permutation(N)[:n]`),
  real first, then synthetic; synthetic people are the positives;
- 5 folds: the fold of row i is `rng.permutation(2n)[i] % 5`;
- in each fold, dosages are standardised with the fold-train mean and sd (+1e-3),
  the features built, and standardised with their fold-train mean and sd (+1e-3);
- L2 logistic regression, C = 1 (objective C·Σ log(1 + exp(-y·f)) + ½‖w‖², no
  intercept: the features are centred), fit in the dual: K = F_tr F_trᵀ (float64),
  eigendecomposed, eigenvalues > 1e-10·max kept, Z = U·sqrt(λ), damped Newton on β
  (Hessian C·ZᵀWZ + I, step halved until the objective does not rise, ≤ 30
  iterations), α = U·β / sqrt(λ); the fold-test scores are (F_te F_trᵀ)·α;
- AUC by ranks (`privacy.auc`) with its Hanley–McNeil standard error.

The kernel is summed over SNP blocks (K = Σ_b F_b F_bᵀ): the feature matrix never
exists whole, so memory is O(n² + n·block) for any number of SNPs. Each Newton step is
solved through an n x n Cholesky factorisation (Woodbury, `_newton`): the same step as
with the Hessian itself, up to rounding, at a fraction of the cost.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from gdiff.evaluate import privacy

LAGS = (1, 2, 3)  # products of SNPs this many apart (same chromosome)
FOLDS = 5
C = 1.0
EPS = 1e-3  # added to every standard deviation
NEWTON_STEPS = 30
KERNEL_ELEMENTS = 1 << 22  # float64 feature values per SNP block (32 MiB)


def _features(z_NxW: np.ndarray, width: int, same_KxW: list[np.ndarray]) -> np.ndarray:
  """Standardised dosages of the block's `width` SNPs and their products with SNPs 1-3 on.

  `z_NxW` holds the block's SNPs and the (up to) max(LAGS) that follow it;
  `same_KxW[k]` marks the block's SNPs whose partner k+1 on exists on the same chromosome.
  """
  parts = [z_NxW[:, :width]]
  for k, same in zip(LAGS, same_KxW):
    cols = np.flatnonzero(same)
    parts.append(z_NxW[:, cols] * z_NxW[:, cols + k])
  return np.concatenate(parts, 1)


def _gram(x_NxS: np.ndarray, num_train: int, chrom_S: np.ndarray, snp_block: int) -> np.ndarray:
  """F_tr Fᵀ (num_train, N), float64, of the standardised features of one fold.

  Rows [0, num_train) of `x_NxS` are the fold's training people; every mean and sd
  comes from them.
  """
  n, s = x_NxS.shape
  train = x_NxS[:num_train]
  mean = train.mean(0, dtype=np.float64)
  sd = train.std(0, dtype=np.float64) + EPS
  chrom_S = np.asarray(chrom_S)
  gram = np.zeros((num_train, n))
  reach = max(LAGS)
  for a in range(0, s, snp_block):
    b = min(a + snp_block, s)
    end = min(b + reach, s)
    z = (x_NxS[:, a:end] - mean[a:end]) / sd[a:end]
    i = np.arange(a, b)
    same = [(i + k < s) & (chrom_S[np.minimum(i + k, s - 1)] == chrom_S[i]) for k in LAGS]
    f = _features(z, b - a, same)
    f_train = f[:num_train]
    f -= f_train.mean(0)
    f /= f_train.std(0) + EPS  # f_train is a view: standardised too
    # F_tr F_trᵀ as a symmetric product of one operand (BLAS syrk: half the flops of F_tr Fᵀ).
    gram[:, :num_train] += f_train @ f_train.T
    gram[:, num_train:] += f_train @ f[num_train:].T
  return gram


def _objective(z_NxR, y_N, beta_R) -> float:
  return float(C * np.logaddexp(0, -y_N * (z_NxR @ beta_R)).sum() + 0.5 * beta_R @ beta_R)


def _newton(z_NxR: np.ndarray, y_N: np.ndarray) -> np.ndarray:
  """β minimising C·Σ log(1 + exp(-y·Zβ)) + ½‖β‖² by damped Newton (the Hessian is ≥ I).

  The Newton step H⁻¹g, H = I + ZᵀDZ (D = C·diag(s(1-s))), is solved through the N x N
  matrix I + D^½ZZᵀD^½ (Woodbury: H⁻¹ = I - ZᵀD^½(I + D^½ZZᵀD^½)⁻¹D^½Z): ZZᵀ is formed once
  and each step costs one Cholesky factorisation, instead of forming ZᵀDZ (R x R) anew.
  Same steps as solving with H itself, up to rounding.
  """
  beta = np.zeros(z_NxR.shape[1])
  kernel_NxN = z_NxR @ z_NxR.T
  diagonal = np.arange(len(kernel_NxN))
  for _ in range(NEWTON_STEPS):
    margin = y_N * (z_NxR @ beta)
    s = 0.5 * (1 - np.tanh(0.5 * margin))  # sigmoid(-margin), without overflow
    grad = -C * z_NxR.T @ (y_N * s) + beta
    root = np.sqrt(C * s * (1 - s))  # D^½
    inner = kernel_NxN * root[:, None] * root[None, :]
    inner[diagonal, diagonal] += 1.0
    inner_z = scipy.linalg.cho_solve(scipy.linalg.cho_factor(inner), root * (z_NxR @ grad))
    step = grad - z_NxR.T @ (root * inner_z)
    t, before = 1.0, _objective(z_NxR, y_N, beta)
    while _objective(z_NxR, y_N, beta - t * step) > before and t > 1e-4:
      t /= 2
    beta = beta - t * step
    if np.abs(t * step).max() < 1e-6:
      break
  return beta


def fit_and_score(
  gram_train_TxT: np.ndarray, gram_test_UxT: np.ndarray, y_T: np.ndarray
) -> np.ndarray:
  """Dual L2 logistic regression on a linear kernel: scores of the test rows (U,).

  Args:
    gram_train_TxT: K = F_tr F_trᵀ.
    gram_test_UxT: F_te F_trᵀ.
    y_T: training labels in {-1, +1}.
  """
  lam, u = np.linalg.eigh(gram_train_TxT)
  keep = lam > 1e-10 * lam.max()
  lam, u = lam[keep], u[:, keep]
  root = np.sqrt(lam)
  beta = _newton(u * root, y_T)
  return gram_test_UxT @ (u @ (beta / root))


def detection_auc(
  real_NxS: np.ndarray,
  synthetic_MxS: np.ndarray,
  chrom_S: np.ndarray,
  rng: np.random.Generator,
  max_people: int = 0,
  snp_block: int = 0,
) -> dict:
  """Cross-validated real-vs-synthetic AUC on whole genotypes (see the module docstring).

  Args:
    real_NxS: real people (the held-out split), dosages.
    synthetic_MxS: the people judged (synthetic, or real train for the reference).
    chrom_S: chromosome of each SNP (products stay within one).
    rng: draws the subsamples, then the folds.
    max_people: at most this many people per side (0: no cap).
    snp_block: SNPs per kernel block (0: about 32 MiB of features per block).

  Returns:
    {'detection_auc', 'detection_auc_se', 'detection_n'}.
  """
  n = min(len(real_NxS), len(synthetic_MxS))
  if max_people > 0:
    n = min(n, max_people)
  real = np.asarray(real_NxS)[rng.permutation(len(real_NxS))[:n]]
  syn = np.asarray(synthetic_MxS)[rng.permutation(len(synthetic_MxS))[:n]]
  x = np.concatenate([real, syn]).astype(np.float32)
  y = np.r_[-np.ones(n), np.ones(n)]
  fold = rng.permutation(2 * n) % FOLDS
  if snp_block <= 0:
    snp_block = max(8, KERNEL_ELEMENTS // (2 * n * (1 + len(LAGS))))
  scores = np.zeros(2 * n)
  for f in range(FOLDS):
    train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
    if not len(test):
      continue
    gram = _gram(x[np.r_[train, test]], len(train), chrom_S, snp_block)
    scores[test] = fit_and_score(gram[:, : len(train)], gram[:, len(train) :].T, y[train])
  value = privacy.auc(scores[y > 0], scores[y < 0])
  return {
    'detection_auc': value,
    'detection_auc_se': privacy.auc_standard_error(value, n, n),
    'detection_n': n,
  }
