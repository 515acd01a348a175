"""The ancestry code of the autoregressive model: what ties a person's SNPs together far apart.

The model (`gdiff.ar.model`) sees only the k SNPs before each SNP, so on its own a
synthetic person's ancestry is re-decided every few dozen SNPs: an admixed person's
ancestry fraction, or a person's place on a within-population cline, does not hold
across a chromosome, let alone across chromosomes. The ancestry code z is that
long-range state made explicit:

  fit       z = the top `P` principal components of the train split's standardised
            genotypes (genome-wide, scaled to unit variance on train); each SNP's
            logits get a term A_j . z, fit with everything else.
  project   val people get z from their own genotypes (the same loadings).
  draw      a synthetic person's z comes first, from a Gaussian per class (mean and
            covariance of the class's train codes: second moments only, no training
            person's code is reused), as a function of (key, person row) alone.

The Gaussian per class is what leaves the cohort: K * (P + P * (P + 1) / 2) numbers.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

_JITTER = 1e-4  # added to each class covariance's diagonal (a class of one person)


@dataclasses.dataclass(frozen=True)
class Projection:
  """Loadings of the train PCA: z = standardised(dosage) @ loadings."""

  mean_S: np.ndarray  # (S,) 2 * allele frequency on train
  scale_S: np.ndarray  # (S,) 1 / sd of each SNP's dosage on train (0: monomorphic)
  loadings_SxP: np.ndarray  # (S, P), divided by each PC's train sd: z has unit variance

  def __call__(self, dosage_NxS: np.ndarray, snp_block: int = 4096) -> np.ndarray:
    """(N, P) float32 codes of people's dosages (memory: N x snp_block at a time)."""
    out = np.zeros((len(dosage_NxS), self.loadings_SxP.shape[1]), np.float64)
    for lo in range(0, dosage_NxS.shape[1], snp_block):
      sl = slice(lo, lo + snp_block)
      x = (np.asarray(dosage_NxS[:, sl], np.float64) - self.mean_S[sl]) * self.scale_S[sl]
      out += x @ self.loadings_SxP[sl]
    return out.astype(np.float32)


def fit_projection(dosage_NxS: np.ndarray, num_pcs: int, seed: int = 0) -> Projection:
  """The top `num_pcs` PCs of train genotypes (randomised SVD: O(N S P), never N x N or S x S).

  Halko et al. (2011): a Gaussian sketch with 10 extra columns and 4 power iterations,
  then an exact SVD of the small projected matrix.
  """
  x = np.asarray(dosage_NxS, np.float32)
  n, s = x.shape
  mean = x.mean(0)
  sd = x.std(0)
  scale = np.where(sd > 0, 1.0 / np.maximum(sd, 1e-12), 0.0).astype(np.float32)
  xs = (x - mean) * scale
  p = int(min(num_pcs, n - 1, s))
  width = min(p + 10, n, s)
  sketch = np.random.default_rng(seed).standard_normal((s, width)).astype(np.float32)
  q, _ = np.linalg.qr(xs @ sketch)
  for _ in range(4):
    q, _ = np.linalg.qr(xs.T @ q)
    q, _ = np.linalg.qr(xs @ q)
  _, sing, vt = np.linalg.svd(q.T @ xs, full_matrices=False)
  pc_sd = sing[:p] / np.sqrt(max(n - 1, 1))
  loadings = vt[:p].T / np.maximum(pc_sd, 1e-12)
  return Projection(mean.astype(np.float64), scale.astype(np.float64), loadings.astype(np.float64))


def class_density(z_NxP: np.ndarray, class_N: np.ndarray, num_classes: int) -> dict:
  """Mean (K, P) and Cholesky factor (K, P, P) of each class's codes (lists, for JSON).

  A class without train people gets the mean and covariance of everyone.
  """
  z = np.asarray(z_NxP, np.float64)
  p = z.shape[1]
  mean = np.zeros((num_classes, p))
  chol = np.zeros((num_classes, p, p))
  for k in range(num_classes):
    rows = z[np.asarray(class_N) == k]
    rows = rows if len(rows) else z
    mean[k] = rows.mean(0)
    cov = np.cov(rows, rowvar=False).reshape(p, p) if len(rows) > 1 else np.zeros((p, p))
    chol[k] = np.linalg.cholesky(cov + _JITTER * np.eye(p))
  return {'mean': mean.tolist(), 'chol': chol.tolist()}


def draw(density: dict, label_ids_B: jax.Array, rows_B: jax.Array, key: jax.Array) -> jax.Array:
  """(B, P) codes of synthetic people: person `row` of class `label` from fold_in(key, row)."""
  mean = jnp.asarray(density['mean'], jnp.float32)
  chol = jnp.asarray(density['chol'], jnp.float32)
  keys = jax.vmap(jax.random.fold_in, (None, 0))(key, rows_B)
  eps = jax.vmap(lambda k: jax.random.normal(k, (mean.shape[1],)))(keys)
  return mean[label_ids_B] + jnp.einsum('bpq,bq->bp', chol[label_ids_B], eps)
