"""KING-robust kinship between two sets of people, blocked and jitted.

The between-family KING-robust estimator (Manichaikul et al. 2010), exactly as
plink2 `--make-king-table` computes it, over the SNPs where both people have a
call (dosage in {0, 1, 2}; anything else is missing):

  phi_ij = 1/2 - (4 N_AA,aa + N_Aa,AA^(i) + N_AA,Aa^(j)) / (4 min(N_Aa^(i), N_Aa^(j)))

with N_AA,aa the opposite-homozygote pairs (IBS0), N_Aa,AA^(i) the SNPs where i is
heterozygous and j homozygous (and the reverse), and N_Aa the heterozygote counts
over the pair's shared calls. Equivalently (N_Aa,Aa - 2 N_AA,aa) / (2 N_Aa^(i)) +
1/2 - (N_Aa^(i) + N_Aa^(j)) / (4 N_Aa^(i)) with N_Aa^(i) <= N_Aa^(j).

Every count is a matmul of 0/1 indicators, one (block x block) tile at a time and
at most `_CHUNK` SNPs per matmul, so memory stays at a few block² floats.
`relatives` keeps each query person's closest reference relative and counts the
pairs per degree (`DEGREES`: KING's ranges, duplicate / monozygotic twin > 0.354,
first degree > 0.177, second degree > 0.0884).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gdiff.evaluate import distances

# (name, lower bound of the kinship coefficient): KING's inference criteria, closest first.
DEGREES = (('duplicate', 0.354), ('first_degree', 0.177), ('second_degree', 0.0884))

_CHUNK = 8192  # SNPs per indicator matmul


def _indicators(g_BxS: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(het, hom-ref, hom-alt) 0/1 float32 indicators; missing calls are all 0."""
  g = g_BxS.astype(jnp.int32)
  return tuple((g == v).astype(jnp.float32) for v in (1, 0, 2))


def _counts(q_BxS: jax.Array, r_BxS: jax.Array) -> jax.Array:
  """(4, Bq, Br): het-het, IBS0, het(q)-hom(r), hom(q)-het(r) counts of every pair."""

  def one(q, r):
    hq, aq, bq = _indicators(q)
    hr, ar, br = _indicators(r)
    mm = lambda x, y: jnp.matmul(x, y.T, precision='highest')
    return jnp.stack([mm(hq, hr), mm(aq, br) + mm(bq, ar), mm(hq, ar + br), mm(aq + bq, hr)])

  s = q_BxS.shape[1]
  if s <= _CHUNK:
    return one(q_BxS, r_BxS)

  def body(i, acc):
    q = jax.lax.dynamic_slice_in_dim(q_BxS, i * _CHUNK, _CHUNK, axis=1)
    r = jax.lax.dynamic_slice_in_dim(r_BxS, i * _CHUNK, _CHUNK, axis=1)
    return acc + one(q, r)

  zero = jnp.zeros((4, q_BxS.shape[0], r_BxS.shape[0]), jnp.float32)
  return jax.lax.fori_loop(0, s // _CHUNK, body, zero)


def _kinship_tile(q_BxS: jax.Array, r_BxS: jax.Array) -> jax.Array:
  """KING-robust kinship of every (query, reference) pair of one tile (NaN: no heterozygote)."""
  hethet, ibs0, het_q_hom_r, hom_q_het_r = _counts(q_BxS, r_BxS)
  smaller_het = jnp.minimum(hethet + het_q_hom_r, hethet + hom_q_het_r)
  kin = 0.5 - (4 * ibs0 + het_q_hom_r + hom_q_het_r) / (4 * smaller_het)
  return jnp.where(smaller_het > 0, kin, jnp.nan)


def _prepare(dosage_NxS) -> np.ndarray:
  x = np.asarray(dosage_NxS, np.int8).reshape(len(dosage_NxS), -1)
  pad = -x.shape[1] % _CHUNK if x.shape[1] > _CHUNK else 0
  return np.pad(x, ((0, 0), (0, pad)), constant_values=-1)  # padding is missing


def autosomal(chrom_S) -> np.ndarray:
  """(S,) bool: SNPs on chromosomes 1-22 ('chr' prefix or not), the ones plink2's KING reads
  (X and Y would make every male look homozygous)."""
  names = np.char.lower(np.asarray(chrom_S).astype(str))
  names = np.char.replace(names, 'chr', '')
  return np.isin(names, [str(k) for k in range(1, 23)])


def span_mb(chrom_S, pos_S) -> float:
  """Megabases the SNPs span, summed over chromosomes (first to last SNP of each)."""
  chrom_S, pos_S = np.asarray(chrom_S).astype(str), np.asarray(pos_S, np.int64)
  return float(sum(np.ptp(pos_S[chrom_S == c]) for c in np.unique(chrom_S)) / 1e6)


def king(query_NxS, reference_MxS) -> np.ndarray:
  """The full (N, M) KING-robust kinship matrix (for small sets and tests)."""
  q, r = _prepare(query_NxS), _prepare(reference_MxS)
  return np.asarray(jax.jit(_kinship_tile)(jnp.asarray(q), jnp.asarray(r)), np.float64)


_BOUNDS = np.array([b for _, b in DEGREES], np.float32)


@functools.partial(jax.jit, static_argnames=('exclude_self',))
def _merge_tile(
  q_BxS, r_BxS, q_start, r_start, r_valid, best_k, best_i, counts_BxD, *, exclude_self
):
  """One tile merged into each query row's closest relative and its per-degree pair counts."""
  b = r_BxS.shape[0]
  kin = _kinship_tile(q_BxS, r_BxS)
  col = r_start + jnp.arange(b)
  invalid = (jnp.arange(b) >= r_valid)[None, :] | jnp.isnan(kin)
  if exclude_self:
    invalid = invalid | ((q_start + jnp.arange(q_BxS.shape[0]))[:, None] == col[None, :])
  kin = jnp.where(invalid, -jnp.inf, kin)
  tile_i = jnp.argmax(kin, axis=1)
  tile_k = jnp.max(kin, axis=1)
  better = tile_k > best_k
  # Degree d: kinship in [bound_d, bound_{d-1}); the duplicate range has no upper bound.
  upper = jnp.concatenate([jnp.array([jnp.inf]), jnp.asarray(_BOUNDS[:-1])])
  in_range = (kin[..., None] > jnp.asarray(_BOUNDS)) & (kin[..., None] <= upper)
  return (
    jnp.where(better, tile_k, best_k),
    jnp.where(better, col[tile_i], best_i),
    counts_BxD + in_range.sum(1).astype(jnp.int32),
  )


def relatives(
  query_NxS, reference_MxS, block_size: int = 1024, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Each query person's closest reference relative by KING-robust kinship, blocked.

  Args:
    query_NxS: (N, S) int8 dosages (values outside {0, 1, 2}: missing).
    reference_MxS: (M, S) int8 dosages of the same SNPs.
    block_size: rows per tile side.
    exclude_self: query row i is reference row i (same set); never pair it with itself.

  Returns:
    (max_kinship_N float64: -inf where no pair has a shared heterozygote, index_N int32
    into `reference`, pairs_NxD int64: reference people per degree of `DEGREES`).
  """
  q, r = _prepare(query_NxS), _prepare(reference_MxS)
  nq, nr = len(q), len(r)
  d = len(DEGREES)
  if not nq or not nr:
    return np.full(nq, -np.inf), np.zeros(nq, np.int32), np.zeros((nq, d), np.int64)
  b = distances.block_rows(max(nq, nr), block_size)
  pad = lambda x: np.pad(x, ((0, b - len(x)), (0, 0)), constant_values=-1)
  r_blocks = [jnp.asarray(pad(r[s : s + b])) for s in range(0, nr, b)]
  best_k, best_i, pairs = [], [], []
  for qs in range(0, nq, b):
    q_block = jnp.asarray(pad(q[qs : qs + b]))
    state = (
      jnp.full((b,), -jnp.inf, jnp.float32),
      jnp.zeros((b,), jnp.int32),
      jnp.zeros((b, d), jnp.int32),
    )
    for j, r_block in enumerate(r_blocks):
      rs = j * b
      state = _merge_tile(
        q_block, r_block, qs, rs, min(b, nr - rs), *state, exclude_self=exclude_self
      )
    n = min(b, nq - qs)
    best_k.append(np.asarray(state[0])[:n])
    best_i.append(np.asarray(state[1])[:n])
    pairs.append(np.asarray(state[2])[:n])
  return (
    np.concatenate(best_k).astype(np.float64),
    np.concatenate(best_i).astype(np.int32),
    np.concatenate(pairs).astype(np.int64),
  )


def degree_of(kinship_N: np.ndarray) -> np.ndarray:
  """The degree name of each kinship value ('' for unrelated), by `DEGREES`."""
  out = np.full(len(kinship_N), '', dtype=object)
  for name, bound in reversed(DEGREES):
    out[np.asarray(kinship_N) > bound] = name
  return out.astype(str)
