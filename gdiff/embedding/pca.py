"""One PCA per SNP group, fit in batches with JAX (covariance + eigh), train rows only.

Groups are bucketed by size (next power of two) and each bucket is processed in
chunks of a fixed number of groups, so the number of compiled shapes is about
log2(largest group) and memory stays bounded. Padded SNP columns get a negative
variance on the diagonal, so their eigenvectors sort last and are never kept
(a group never keeps more components than it has SNPs).

Sign convention: each component's largest-magnitude loading is positive (ties:
the first such SNP).

Components per group come from `RULES` (`embedding.rule`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np

from gdiff import errors
from gdiff.embedding import grouping

_CHUNK_ELEMENTS = 1 << 24  # rows x groups x SNPs per chunk (64 MiB in float32)
_PAD_VARIANCE = -1.0  # covariance is PSD, so padded directions sort below every real one


def _paper_rule(sizes_G: np.ndarray, emb_cfg) -> np.ndarray:
  """The paper: > 20 SNPs -> 8, 5..20 -> 4, <= 4 -> 1."""
  del emb_cfg
  return np.select([sizes_G > 20, sizes_G >= 5], [8, 4], 1)


def _full_rule(sizes_G: np.ndarray, emb_cfg) -> np.ndarray:
  """As many components as SNPs, up to the slots."""
  return np.minimum(sizes_G, int(emb_cfg.slots))


def _fixed_rule(sizes_G: np.ndarray, emb_cfg) -> np.ndarray:
  """`fixed_components` per group (fewer if the group has fewer SNPs)."""
  return np.minimum(sizes_G, int(emb_cfg.fixed_components))


RULES = {'paper': _paper_rule, 'full': _full_rule, 'fixed': _fixed_rule}


def check_config(emb_cfg) -> None:
  """Raises InputError naming the option for bad `embedding.rule` / slots settings."""
  if emb_cfg.rule not in RULES:
    raise errors.InputError(
      f'embedding.rule={emb_cfg.rule!r} is unknown (known: {", ".join(RULES)})'
    )
  if int(emb_cfg.slots) < 1:
    raise errors.InputError(f'embedding.slots must be >= 1, got {emb_cfg.slots}')
  if emb_cfg.rule == 'fixed' and int(emb_cfg.fixed_components) < 1:
    raise errors.InputError(
      f'embedding.fixed_components must be >= 1, got {emb_cfg.fixed_components}'
    )


def num_components(sizes_G: np.ndarray, emb_cfg) -> np.ndarray:
  """(G,) components kept per group: the rule, capped by the group size and the slots."""
  check_config(emb_cfg)
  comps = RULES[emb_cfg.rule](np.asarray(sizes_G), emb_cfg)
  return np.minimum(np.minimum(comps, sizes_G), int(emb_cfg.slots)).astype(np.int32)


@dataclasses.dataclass(frozen=True)
class PCAFit:
  """Per-SNP form of all group PCAs (each SNP belongs to one group)."""

  mean_S: np.ndarray  # (S,) float32 train mean dosage
  loadings_SxC: np.ndarray  # (S, C) float32; column c of group g is its c-th component
  components_G: np.ndarray  # (G,) int32 components kept
  variance_GxC: np.ndarray  # (G, C) float32 train variance of each kept component


@functools.partial(jax.jit, static_argnames='slots')
def _chunk_pca(x_NxKxM, valid_KxM, slots: int):
  """Top `slots` eigenvectors of the covariance of each of K groups of M (padded) SNPs.

  Returns:
    mean (K, M), vectors (K, M, slots), eigenvalues (K, slots).
  """
  n = x_NxKxM.shape[0]
  mean_KxM = x_NxKxM.mean(0)
  xc = x_NxKxM - mean_KxM
  cov = jnp.einsum('nkm,nkl->kml', xc, xc) / max(n - 1, 1)
  valid = valid_KxM.astype(cov.dtype)
  cov = cov * valid[:, :, None] * valid[:, None, :]
  cov = cov + jnp.eye(cov.shape[-1]) * jnp.where(valid_KxM, 0.0, _PAD_VARIANCE)[:, None, :]
  eigval, eigvec = jnp.linalg.eigh(cov)  # ascending
  m = cov.shape[-1]
  take = min(slots, m)
  eigval = eigval[:, ::-1][:, :take]
  eigvec = eigvec[:, :, ::-1][:, :, :take]
  eigvec = eigvec * valid[:, :, None]
  # Deterministic sign: largest |loading| positive.
  pivot = jnp.argmax(jnp.abs(eigvec), axis=1)  # (K, take)
  sign = jnp.sign(jnp.take_along_axis(eigvec, pivot[:, None, :], axis=1))
  eigvec = eigvec * jnp.where(sign == 0, 1.0, sign)
  pad = slots - take
  eigvec = jnp.pad(eigvec, ((0, 0), (0, 0), (0, pad)))
  eigval = jnp.pad(eigval, ((0, 0), (0, pad)))
  return mean_KxM, eigvec, eigval


def _bucket(size: int) -> int:
  return 1 << max(0, int(size - 1).bit_length())


def fit(dosage_train_NxS: np.ndarray, groups: grouping.Groups, emb_cfg) -> PCAFit:
  """Fits one PCA per group on the training rows.

  Args:
    dosage_train_NxS: (N, S) int8 training dosages (only train rows: the caller's duty).
    groups: the SNP groups.
    emb_cfg: the `embedding` config section (`rule`, `slots`, `fixed_components`).
  Returns:
    PCAFit with per-SNP means and loadings.
  """
  n, num_snps = dosage_train_NxS.shape
  if n < 2:
    raise errors.InputError(f'embedding: need at least 2 training samples, got {n}')
  slots = int(emb_cfg.slots)
  sizes = groups.sizes
  comps = num_components(sizes, emb_cfg)
  members = groups.members()
  mean_S = np.zeros(num_snps, np.float32)
  loadings = np.zeros((num_snps, slots), np.float32)
  variance = np.zeros((groups.num_groups, slots), np.float32)
  buckets = np.array([_bucket(s) for s in sizes])
  for m in np.unique(buckets):
    gids = np.flatnonzero(buckets == m)
    chunk = int(max(1, min(len(gids), _CHUNK_ELEMENTS // (n * m))))
    for lo in range(0, len(gids), chunk):
      part = gids[lo : lo + chunk]
      index = np.zeros((chunk, m), np.int64)
      valid = np.zeros((chunk, m), bool)
      for k, g in enumerate(part):
        index[k, : sizes[g]] = members[g]
        valid[k, : sizes[g]] = True
      x = np.where(valid[None], dosage_train_NxS[:, index], 0).astype(np.float32)
      mean_KxM, vec, val = jax.device_get(_chunk_pca(x, valid, slots))
      for k, g in enumerate(part):
        snps = members[g]
        c = comps[g]
        mean_S[snps] = mean_KxM[k, : sizes[g]]
        loadings[snps, :c] = vec[k, : sizes[g], :c]
        variance[g, :c] = val[k, :c]
  logging.info(
    'pca: %d groups, %d components kept, rule %s', groups.num_groups, int(comps.sum()), emb_cfg.rule
  )
  return PCAFit(mean_S, loadings, comps, variance)
