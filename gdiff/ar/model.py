"""The local autoregressive model: each SNP's allele given the `k` SNPs before it.

A sequence is one haplotype (a phased cohort: alleles in {0, 1}) or one person's
genotypes (unphased: ALT counts in {0, 1, 2}); `ARConfig.num_states` is 2 or 3.
For SNP j of a sequence x whose person has class y, and each state s > 0 (state 0
is the reference, logit 0),

  logit_{j,s}(x) = c_{j,s} + e_{j,y,s}
                   + sum_{d=1..k} ( T_{j,d}[x_{j-d}, s] + D_{j,y,d}[x_{j-d}, s] )

                   + A_j . z                                  (ancestry, optional)

where T_{j,d}[v] and D_{j,y,d}[v] are 0 for v = 0 and when SNP j-d lies before the
start or on another chromosome (`PAD`). T holds the LD shared by all classes, D each
class's own deviation (populations differ in LD, not only in frequency), and z the
person's ancestry code (`gdiff.ar.ancestry`: the top genome-wide principal components,
one vector per person shared by all SNPs and both haplotypes; drawn first when sampling,
so a synthetic person's chromosomes agree on ancestry far beyond k SNPs). It is one
multinomial logistic regression of each SNP on indicators of the states before it:
with the L2 penalty on e, T and D (c is free) the fit is convex and separable by SNP
(`gdiff.ar.fit` runs it block by block); sampling walks the SNPs in genome order
(`gdiff.ar.sampler`).

Parameters (a dict of arrays; S SNPs, K classes, F = k * (num_states - 1) indicators,
C = num_states - 1 logits):
  c (S, C), e (S, K, C), T (S, F, C), D (S, K, F, C) (absent when `per_class` is False),
  A (S, P, C) (absent when `ancestry` is 0),
  valid (S, k) bool: SNP j-d exists and is on j's chromosome (not fitted).
Indicator f = (d - 1) * (num_states - 1) + (v - 1) is "x_{j-d} = v" for v >= 1.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class ARConfig:
  """The model's shape and penalties (built once from the `ar` config section)."""

  num_states: int  # 2: haplotypes; 3: genotypes (ALT counts)
  num_classes: int
  context: int  # k, SNPs before each SNP that it is conditioned on
  per_class: bool = True  # class-specific context tables D
  l2_shared: float = 0.01  # penalty of T and e, against the summed log-likelihood
  l2_class: float = 0.1  # penalty of D
  ancestry: int = 0  # P, dimensions of the ancestry code z (0: none)

  @property
  def pad(self) -> int:
    """The code of 'no SNP here' in context codes."""
    return self.num_states

  @property
  def features(self) -> int:
    """Indicator features per SNP: one per lag and non-reference state."""
    return self.context * (self.num_states - 1)

  @property
  def logits(self) -> int:
    """Logits per SNP: one per state against the reference state 0."""
    return self.num_states - 1


def context_valid(chrom_S: np.ndarray, k: int) -> np.ndarray:
  """(S, k) bool: SNP j-d (d = 1..k) exists and lies on the chromosome of SNP j."""
  chrom_S = np.asarray(chrom_S)
  valid = np.zeros((len(chrom_S), k), bool)
  for d in range(1, k + 1):
    valid[d:, d - 1] = chrom_S[d:] == chrom_S[:-d]
  return valid


def context_codes(
  x_NxS: np.ndarray, valid_SxK: np.ndarray, lo: int, hi: int, pad: int
) -> np.ndarray:
  """(N, hi-lo, k) int8: the values x[:, j-d] for SNPs j in [lo, hi), `pad` where invalid."""
  n = x_NxS.shape[0]
  k = valid_SxK.shape[1]
  out = np.full((n, hi - lo, k), pad, np.int8)
  for d in range(1, k + 1):
    src_lo = max(lo - d, 0)
    if hi - d <= src_lo:  # the block lies within d SNPs of the cohort's start
      continue
    dst_lo = src_lo + d - lo
    out[:, dst_lo:, d - 1] = x_NxS[:, src_lo : hi - d]
  out[:, ~valid_SxK[lo:hi]] = pad
  return out


def indicators(cfg: ARConfig, codes_NxBxK: jax.Array) -> jax.Array:
  """(B, N, F) float32 indicators "x_{j-d} = v" (v >= 1; 0 at PAD), SNP-major for matmuls."""
  values = jnp.arange(1, cfg.num_states, dtype=codes_NxBxK.dtype)
  hot = (codes_NxBxK[..., None] == values).astype(jnp.float32)  # (N, B, k, C)
  n, b = codes_NxBxK.shape[:2]
  return jnp.swapaxes(hot.reshape(n, b, cfg.features), 0, 1)


def init_params(cfg: ARConfig, x_NxS: np.ndarray) -> dict:
  """Zero tables; intercepts at the log odds of each state against state 0 (train)."""
  s, c = x_NxS.shape[1], cfg.logits
  freq = np.stack([(x_NxS == v).mean(0) for v in range(cfg.num_states)], 1) + 1e-3
  params = {
    'c': np.log(freq[:, 1:] / freq[:, :1]).astype(np.float32),
    'e': np.zeros((s, cfg.num_classes, c), np.float32),
    'T': np.zeros((s, cfg.features, c), np.float32),
  }
  if cfg.per_class:
    params['D'] = np.zeros((s, cfg.num_classes, cfg.features, c), np.float32)
  if cfg.ancestry:
    params['A'] = np.zeros((s, cfg.ancestry, c), np.float32)
  return params


def block_logits(
  params: dict,
  feats_BxNxF: jax.Array,
  class_rows: tuple[tuple[int, int], ...],
  z_NxP: jax.Array | None = None,
) -> jax.Array:
  """Logits (B, N, num_states) of a block of B SNPs for sequences sorted by class.

  Args:
    params: the block's parameters (leading axis B).
    feats_BxNxF: the context indicators (possibly centred).
    class_rows: (start, stop) rows of each class, in class order (sequences are sorted).
    z_NxP: each sequence's ancestry code (required when `params` has A).
  """
  # One product per class with T + D_y: the indicators, the largest array of the fit, are read
  # once per evaluation (and once by its gradient) instead of twice.
  parts = []
  for cls, (lo, hi) in enumerate(class_rows):
    table = params['T'] + params['D'][:, cls] if 'D' in params else params['T']
    part = jnp.einsum('bnf,bfc->bnc', feats_BxNxF[:, lo:hi], table)
    parts.append(part + params['e'][:, cls][:, None])
  logits = jnp.concatenate(parts, 1) + params['c'][:, None]
  if 'A' in params:
    logits = logits + jnp.einsum('np,bpc->bnc', z_NxP, params['A'])
  return jnp.concatenate([jnp.zeros(logits.shape[:-1] + (1,)), logits], -1)


def penalty(cfg: ARConfig, params: dict) -> jax.Array:
  """The L2 penalty: shared tables and class effects at l2_shared, class tables at l2_class."""
  out = cfg.l2_shared * (jnp.sum(params['T'] ** 2) + jnp.sum(params['e'] ** 2))
  if 'D' in params:
    out = out + cfg.l2_class * jnp.sum(params['D'] ** 2)
  if 'A' in params:
    out = out + cfg.l2_shared * jnp.sum(params['A'] ** 2)
  return out


def log_likelihood(logits_BxNxS: jax.Array, x_NxB: jax.Array, weight_B: jax.Array) -> jax.Array:
  """Sum over sequences and (weighted) SNPs of log p(x)."""
  logp = jax.nn.log_softmax(logits_BxNxS)
  # A one-hot product, not a gather: the gather's gradient is a scatter, slow on CPU.
  hot = jax.nn.one_hot(x_NxB.T, logp.shape[-1], dtype=logp.dtype)
  return jnp.sum(jnp.sum(hot * logp, -1) * weight_B[:, None])
