"""Blocked k-nearest-neighbour search for the privacy and realism metrics.

Distances are computed one (block × block) tile at a time by a jitted function
that merges the tile into a running top-k per query row, so a 20,000 × 20,000
comparison never holds the full matrix (memory ~ block_size² floats plus the
inputs of one tile). Metrics are picked by name from `METRICS`:

  angular    arccos(cosine similarity) / π in [0, 1] on embeddings (the paper's
             distance for NNAA).
  hamming    number of SNPs whose genotype differs, via one matmul of genotype
             indicators (`_cross`; exact integer counts in float32 up to 2^24 SNPs).
  euclidean  on low-dimensional features (principal components).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

# Cosine similarities this close to 1 count as angle 0: arccos amplifies float32
# rounding (cos = 1 - 6e-8 gives 3.5e-4 rad), and an exact copy must score 0.
_COS_ONE = 1.0 - 1e-6


def _angular_prepare(x_NxD: np.ndarray) -> np.ndarray:
  x = np.asarray(x_NxD, np.float32).reshape(len(x_NxD), -1)
  norm = np.linalg.norm(x, axis=1, keepdims=True)
  return x / np.maximum(norm, 1e-12)


def _angular_tile(q_BxD: jax.Array, r_BxD: jax.Array) -> jax.Array:
  cos = jnp.clip(jnp.matmul(q_BxD, r_BxD.T, precision='highest'), -1.0, 1.0)
  return jnp.where(cos >= _COS_ONE, 0.0, jnp.arccos(cos) / jnp.pi)


# SNPs per one-hot matmul: bounds a tile's working memory (block x 3·chunk floats)
# for genome-wide panels.
_HAMMING_CHUNK = 8192


def _hamming_prepare(dosage_NxS: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(int8 dosages, zero-padded to whole chunks; each row's count of genotypes 0 and 1)."""
  x = np.asarray(dosage_NxS, np.int8).reshape(len(dosage_NxS), -1)
  pad = -x.shape[1] % _HAMMING_CHUNK if x.shape[1] > _HAMMING_CHUNK else 0
  # Zero padding matches itself, so it adds to matches and to S alike.
  x = np.pad(x, ((0, 0), (0, pad)))
  return x, np.sum(x < 2, 1, dtype=np.int64).astype(np.float32)


def _indicators(g_BxS: jax.Array) -> jax.Array:
  """(B, 2S) indicators [g == 0], [g == 1] of each SNP (g == 2 is what is left)."""
  g = g_BxS.astype(jnp.int32)
  return jnp.stack([g == 0, g == 1], -1).astype(jnp.float32).reshape(g.shape[0], -1)


def _cross(q_BxS: jax.Array, r_BxS: jax.Array) -> jax.Array:
  """The cross term of the mismatch count, from two indicators per SNP instead of a 3-way
  one-hot.

  With a = [q == 0], b = [q == 1] (and c, d for r), [q == r] is
  ac + bd + (1 - a - b)(1 - c - d), so per SNP [q != r] = (a + b) + (c + d)
  - (a(2c + d) + b(c + 2d)): the row counts of `_hamming_prepare` minus this one matmul
  over 2S columns (instead of 3S). Every term is a small integer, exact in float32 (up to
  2^24 SNPs). The reference side is built transposed, (2S, B), the layout the matmul reads.
  """
  g = r_BxS.astype(jnp.int32).T
  c, d = (g == 0).astype(jnp.float32), (g == 1).astype(jnp.float32)
  r_mixed = jnp.stack([2 * c + d, c + 2 * d], 1).reshape(-1, g.shape[1])
  return jnp.matmul(_indicators(q_BxS), r_mixed, precision='highest')


def _hamming_tile(q, r) -> jax.Array:
  """Mismatch counts of a tile; q and r are `_hamming_prepare`'s (dosages, counts) pairs."""
  (q_BxS, q_count), (r_BxS, r_count) = q, r
  b, s = q_BxS.shape
  if s <= _HAMMING_CHUNK:
    cross = _cross(q_BxS, r_BxS)
  else:

    def body(i, acc):
      q = jax.lax.dynamic_slice_in_dim(q_BxS, i * _HAMMING_CHUNK, _HAMMING_CHUNK, axis=1)
      r = jax.lax.dynamic_slice_in_dim(r_BxS, i * _HAMMING_CHUNK, _HAMMING_CHUNK, axis=1)
      return acc + _cross(q, r)

    zero = jnp.zeros((b, r_BxS.shape[0]), jnp.float32)
    cross = jax.lax.fori_loop(0, s // _HAMMING_CHUNK, body, zero)
  # The row counts come in precomputed: a reduction in this function would be fused into
  # the matmul's library call (YNN on CPU), which then runs at about half its speed.
  return q_count[:, None] + r_count[None, :] - cross


def _euclidean_prepare(x_NxD: np.ndarray) -> np.ndarray:
  return np.asarray(x_NxD, np.float32).reshape(len(x_NxD), -1)


def _euclidean_tile(q_BxD: jax.Array, r_BxD: jax.Array) -> jax.Array:
  sq = (
    jnp.sum(q_BxD**2, 1)[:, None]
    + jnp.sum(r_BxD**2, 1)[None, :]
    - 2 * jnp.matmul(q_BxD, r_BxD.T, precision='highest')
  )
  return jnp.sqrt(jnp.maximum(sq, 0.0))


# name -> (host-side preparation: an array or a tuple of arrays with rows first, jit-able
# tile distance of two prepared blocks)
METRICS = {
  'angular': (_angular_prepare, _angular_tile),
  'hamming': (_hamming_prepare, _hamming_tile),
  'euclidean': (_euclidean_prepare, _euclidean_tile),
}


@functools.partial(jax.jit, static_argnames=('metric', 'exclude_self'))
def _merge_tile(
  q_BxD,
  r_BxD,
  q_start,
  r_start,
  r_valid,
  best_d_BxK,
  best_i_BxK,
  *,
  metric: str,
  exclude_self: bool,
):
  """Distances of one tile, merged into the running top-k of each query row."""
  b, k = best_d_BxK.shape
  d_BxB = METRICS[metric][1](q_BxD, r_BxD)
  col = r_start + jnp.arange(b)
  invalid = (jnp.arange(b) >= r_valid)[None, :]
  if exclude_self:
    invalid = invalid | ((q_start + jnp.arange(b))[:, None] == col[None, :])
  d_BxB = jnp.where(invalid, jnp.inf, d_BxB)
  cand_d = jnp.concatenate([best_d_BxK, d_BxB], axis=1)
  cand_i = jnp.concatenate([best_i_BxK, jnp.broadcast_to(col, d_BxB.shape)], axis=1)
  neg_d, pos = jax.lax.top_k(-cand_d, k)
  return -neg_d, jnp.take_along_axis(cand_i, pos, axis=1)


def _pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
  if len(x) == rows:
    return x
  return np.concatenate([x, np.zeros((rows - len(x),) + x.shape[1:], x.dtype)])


def block_rows(n: int, block_size: int) -> int:
  """Rows per block: block_size, or the next power of two (>= 8) for small inputs,
  so that inputs of many sizes share a few compiled shapes."""
  return int(min(block_size, max(8, 1 << max(int(n) - 1, 0).bit_length())))


def nearest(
  query,
  reference,
  metric: str = 'angular',
  k: int = 1,
  block_size: int = 1024,
  exclude_self: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
  """k nearest reference rows of each query row, blocked.

  Args:
    query: (Nq, ...) array (embeddings or int8 dosages).
    reference: (Nr, ...) array of the same kind.
    metric: a key of `METRICS`.
    k: neighbours per query row (k <= Nr, minus one when excluding self).
    block_size: rows per tile side (evaluate.block_size).
    exclude_self: query row i is reference row i (same set); never return it.

  Returns:
    (dist_NqxK float32 ascending, index_NqxK int32 into `reference`).
  """
  if metric not in METRICS:
    raise ValueError(f'unknown metric {metric!r}; expected one of {sorted(METRICS)}')
  prepare = METRICS[metric][0]
  q, r = prepare(query), prepare(reference)  # arrays, or tuples of arrays with rows first
  nq, nr = len(jax.tree.leaves(q)[0]), len(jax.tree.leaves(r)[0])
  if k > nr - int(exclude_self):
    raise ValueError(f'k={k} neighbours requested from {nr} reference rows')
  b = block_rows(max(nq, nr), block_size)  # square tiles

  def block(x, start):
    return jax.tree.map(lambda a: jnp.asarray(_pad_rows(a[start : start + b], b)), x)

  r_blocks = [block(r, s) for s in range(0, nr, b)]
  dist, index = [], []
  for qs in range(0, nq, b):
    q_block = block(q, qs)
    best_d = jnp.full((b, k), jnp.inf, jnp.float32)
    best_i = jnp.zeros((b, k), jnp.int32)
    for j, r_block in enumerate(r_blocks):
      rs = j * b
      best_d, best_i = _merge_tile(
        q_block,
        r_block,
        qs,
        rs,
        min(b, nr - rs),
        best_d,
        best_i,
        metric=metric,
        exclude_self=exclude_self,
      )
    n = min(b, nq - qs)
    dist.append(np.asarray(best_d)[:n])
    index.append(np.asarray(best_i)[:n])
  return np.concatenate(dist), np.concatenate(index).astype(np.int32)
