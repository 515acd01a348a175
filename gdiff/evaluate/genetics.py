"""Genetic realism of decoded genotypes (int8 dosages in {0,1,2}, N x S).

Per-cohort statistics come from one jitted pass over row blocks that returns
sums (genotype counts, Σx, Σx², lagged Σx_i·x_{i+k}); the host adds the blocks
and derives allele and genotype frequencies, LD r² between SNPs at most
`max_lag` apart on the same chromosome (banded: S × max_lag values, never S × S)
and heterozygosity. On top of these:

- allele-frequency Pearson r and genotype-frequency error vs real train;
- LD fidelity: Pearson r of the r² values (pairs defined in both cohorts) and
  LD-decay curves: mean r² per SNP distance 1..max_lag, per physical distance
  (below 1 kb, then log-spaced bp bins: `distance_edges`) and per minor-allele-frequency bin of the
  pair (`MAF_EDGES`, the lower real-train MAF of its two SNPs); the bins are fixed
  once from real train and the positions, so every cohort averages the same pairs;
- PCA fit on real train (standardised genotypes, Gram matrix over SNP blocks),
  with the held-out split and synthetic projected; a two-sample k-NN classifier
  (real held out vs synthetic, 2-fold) on the top PCs gives an AUC (0.5 =
  indistinguishable);
- Hudson F_ST (ratio of averages, Bhatia et al. 2013) between label groups.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gdiff import rng as rng_lib
from gdiff.evaluate import distances, privacy

_LD_WINDOW = 256  # SNPs per matmul window of the banded LD sums
LD_DISTANCE_BINS = 12  # bins of the LD-by-distance curve: [0, 1 kb), then log-spaced
LD_DISTANCE_MIN_BP = 1000.0  # where the log-spaced bins start (unless no pair is farther)
# The pair's minor-allele frequency (the lower of its two SNPs', in real train).
MAF_EDGES = (0.0, 0.01, 0.05, 0.1, 0.2, 0.5)
LD_CURVES = ('ld_decay', 'ld_distance', 'ld_maf')  # compare()'s LD curves


@functools.partial(jax.jit, static_argnames='max_lag')
def _moment_sums(x_BxS, valid_B, *, max_lag: int) -> dict:
  """Sums over the valid rows of one block; blocks are merged by addition.

  The lagged products Σ_n x[n,i]·x[n,i+k] come from one (W, W+K) matmul per window
  of W SNPs (lax.map: compiled once), whose band is then gathered.
  """
  valid = valid_B.astype(jnp.float32)[:, None]
  x = x_BxS.astype(jnp.float32) * valid
  counts = jnp.stack([jnp.sum((x_BxS == g) * valid, 0) for g in range(3)])
  b, s = x.shape
  w = _LD_WINDOW
  num_windows = -(-s // w)
  xp = jnp.pad(x, ((0, 0), (0, num_windows * w + max_lag - s)))  # zeros past the end

  def window(start):
    xa = jax.lax.dynamic_slice(xp, (0, start), (b, w))
    xb = jax.lax.dynamic_slice(xp, (0, start), (b, w + max_lag))
    gram_WxWK = jnp.matmul(xa.T, xb, precision='highest')
    rows = jnp.arange(w)[:, None]
    return gram_WxWK[rows, rows + jnp.arange(1, max_lag + 1)[None, :]]  # (W, K)

  if max_lag:
    band = jax.lax.map(window, jnp.arange(num_windows) * w)  # (windows, W, K)
    lagged = band.reshape(num_windows * w, max_lag)[:s].T
  else:
    lagged = jnp.zeros((0, s))
  return {
    'n': jnp.sum(valid),
    'counts_3xS': counts,
    'sum_S': jnp.sum(x, 0),
    'sumsq_S': jnp.sum(x * x, 0),
    'lagged_KxS': lagged,
  }


def moments(dosage_NxS: np.ndarray, max_lag: int, block_size: int = 1024) -> dict:
  """Blocked sums of one cohort (numpy, merged on the host)."""
  dosage_NxS = np.asarray(dosage_NxS, np.int8)
  n, s = dosage_NxS.shape
  b = distances.block_rows(n, block_size)
  max_lag = min(max_lag, max(s - 1, 0))
  total = None
  for start in range(0, n, b):
    block = dosage_NxS[start : start + b]
    valid = np.arange(b) < len(block)
    if len(block) < b:
      block = np.concatenate([block, np.zeros((b - len(block), s), np.int8)])
    part = jax.device_get(_moment_sums(block, valid, max_lag=max_lag))
    total = part if total is None else {k: total[k] + v for k, v in part.items()}
  return {k: np.asarray(v, np.float64) for k, v in total.items()}


def allele_frequencies(m: dict) -> np.ndarray:
  return m['sum_S'] / (2 * m['n'])


def genotype_frequencies(m: dict) -> np.ndarray:
  return m['counts_3xS'] / m['n']


def ld_r2(m: dict, chrom_S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Banded LD: r²[k-1, i] between SNP i and i+k (same chromosome).

  Returns:
    (r2_KxS, defined_KxS bool): undefined where a SNP is monomorphic, i+k runs
    off the end or crosses a chromosome boundary.
  """
  n = m['n']
  mean = m['sum_S'] / n
  var = m['sumsq_S'] / n - mean**2
  k_max, s = m['lagged_KxS'].shape
  r2 = np.zeros((k_max, s))
  defined = np.zeros((k_max, s), bool)
  chrom_S = np.asarray(chrom_S)
  for k in range(1, k_max + 1):
    i, j = np.arange(s - k), np.arange(k, s)
    cov = m['lagged_KxS'][k - 1, : s - k] / n - mean[i] * mean[j]
    denom = var[i] * var[j]
    ok = (denom > 1e-12) & (chrom_S[i] == chrom_S[j])
    r2[k - 1, : s - k] = np.where(ok, cov**2 / np.where(ok, denom, 1.0), 0.0)
    defined[k - 1, : s - k] = ok
  return np.minimum(r2, 1.0), defined


def pair_distances(pos_S: np.ndarray, max_lag: int) -> np.ndarray:
  """Base pairs between SNP i and i+k, as dist_KxS[k-1, i] (0 past the end)."""
  pos_S = np.asarray(pos_S, np.float64)
  s = len(pos_S)
  dist = np.zeros((max_lag, s))
  for k in range(1, min(max_lag, s - 1) + 1):
    dist[k - 1, : s - k] = np.abs(pos_S[k:] - pos_S[:-k])
  return dist


def distance_edges(
  dist_KxS: np.ndarray, same_KxS: np.ndarray, num_bins: int = LD_DISTANCE_BINS
) -> np.ndarray:
  """Bin edges (bp): 0, then log-spaced from LD_DISTANCE_MIN_BP to the longest distance of
  the pairs `same_KxS` marks (from the shortest positive one, when none is past 1 kb)."""
  d = dist_KxS[same_KxS]
  d = d[d > 0]
  if not len(d):
    return np.array([0.0, 1.0])
  hi = d.max()
  lo = LD_DISTANCE_MIN_BP if hi > LD_DISTANCE_MIN_BP else d.min()
  return np.r_[0.0, np.geomspace(lo, max(hi, lo * 1.001), num_bins)]


def bin_ids(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
  """The bin of each value; below the first edge: bin 0, at or above the last: the last."""
  return np.clip(np.searchsorted(edges, values, side='right') - 1, 0, len(edges) - 2)


def ld_pair_bins(pos_S, chrom_S, af_train_S, max_lag: int) -> dict:
  """The distance and MAF bin of each banded SNP pair (-1: no pair), the bin edges and the
  mean distance of the pairs in each distance bin."""
  chrom_S = np.asarray(chrom_S)
  s = len(chrom_S)
  max_lag = min(max_lag, max(s - 1, 0))
  same = np.zeros((max_lag, s), bool)
  for k in range(1, max_lag + 1):
    same[k - 1, : s - k] = chrom_S[k:] == chrom_S[:-k]
  dist = pair_distances(pos_S, max_lag)
  edges = distance_edges(dist, same)
  maf = np.minimum(af_train_S, 1 - af_train_S)
  pair_maf = np.zeros((max_lag, s))
  for k in range(1, max_lag + 1):
    pair_maf[k - 1, : s - k] = np.minimum(maf[k:], maf[:-k])
  maf_edges = np.asarray(MAF_EDGES)
  dist_bins = np.where(same, bin_ids(dist, edges), -1).astype(np.int16)
  return {
    'ld_distance_edges': edges,
    'ld_maf_edges': maf_edges,
    'ld_distance_bp': binned_mean(dist, same, dist_bins, len(edges) - 1),  # plots' x
    'ld_distance_bin_KxS': dist_bins,
    'ld_maf_bin_KxS': np.where(same, bin_ids(pair_maf, maf_edges), -1).astype(np.int16),
  }


def binned_mean(
  values_KxS: np.ndarray, defined_KxS: np.ndarray, bins_KxS: np.ndarray, num_bins: int
) -> np.ndarray:
  """Mean of the defined values per bin (NaN where a bin holds none)."""
  rows = defined_KxS & (bins_KxS >= 0)
  total = np.bincount(bins_KxS[rows], weights=values_KxS[rows], minlength=num_bins)
  count = np.bincount(bins_KxS[rows], minlength=num_bins)
  return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def heterozygosity(dosage_NxS: np.ndarray) -> np.ndarray:
  """Share of heterozygous SNPs per individual, (N,)."""
  return np.mean(np.asarray(dosage_NxS) == 1, axis=1)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
  a, b = np.ravel(a), np.ravel(b)
  if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
    return float('nan')
  return float(np.corrcoef(a, b)[0, 1])


def hudson_fst(af_KxS: np.ndarray, n_K: np.ndarray) -> np.ndarray:
  """Pairwise Hudson F_ST between groups (ratio of averages over SNPs).

  Args:
    af_KxS: allele frequencies per group.
    n_K: individuals per group (2n haplotypes).

  Returns:
    (K, K) symmetric matrix, zero diagonal; NaN where a group has < 2 people.
  """
  k = len(af_KxS)
  out = np.zeros((k, k))
  for a in range(k):
    for b in range(a + 1, k):
      pa, pb = af_KxS[a], af_KxS[b]
      ha, hb = 2 * n_K[a], 2 * n_K[b]
      if n_K[a] < 2 or n_K[b] < 2:
        out[a, b] = out[b, a] = np.nan
        continue
      num = (pa - pb) ** 2 - pa * (1 - pa) / (ha - 1) - pb * (1 - pb) / (hb - 1)
      den = pa * (1 - pb) + pb * (1 - pa)
      out[a, b] = out[b, a] = num.sum() / max(den.sum(), 1e-12)
  return out


def group_fst(dosage_NxS, label_ids_N, num_classes: int, block_size: int = 1024) -> np.ndarray:
  """Pairwise Hudson F_ST between the label groups of one cohort."""
  label_ids_N = np.asarray(label_ids_N)
  af, n = [], []
  for c in range(num_classes):
    rows = label_ids_N == c
    n.append(rows.sum())
    if rows.sum():
      af.append(allele_frequencies(moments(dosage_NxS[rows], 0, block_size)))
    else:
      af.append(np.full(dosage_NxS.shape[1], np.nan))
  return hudson_fst(np.stack(af), np.array(n))


# ------------------------------------------------------------------ PCA
EXACT_PCA_MAX_PEOPLE = 2000  # above: randomized PCA (memory N·(K+10), no N x N matrix)
PCA_OVERSAMPLE = 10
PCA_POWER_ITERATIONS = 4


def _standardised(train_NxS, mean, scale, snp_block):
  """Yields (slice, standardised block) over the SNPs."""
  for a in range(0, train_NxS.shape[1], snp_block):
    sl = slice(a, a + snp_block)
    yield sl, (train_NxS[:, sl] - mean[sl]) * scale[sl]


def _top_eigen_gram(train_NxS, mean, scale, k, snp_block):
  """Top-k eigenpairs of Z Zᵀ from the N x N Gram matrix (exact; N² memory)."""
  n = len(train_NxS)
  gram = np.zeros((n, n))
  for _, z in _standardised(train_NxS, mean, scale, snp_block):
    gram += z @ z.T
  vals, vecs = np.linalg.eigh(gram)
  return vals[::-1][:k], vecs[:, ::-1][:, :k]


def _top_eigen_randomized(train_NxS, mean, scale, k, snp_block, seed):
  """Top-k eigenpairs of Z Zᵀ by randomized subspace iteration (Halko, Martinsson and Tropp
  2011, alg. 4.4): K + 10 columns, 4 power iterations, Z read in SNP blocks; memory
  N·(K+10) + S·(K+10)."""
  n, s = train_NxS.shape
  width = min(k + PCA_OVERSAMPLE, n)
  omega = rng_lib.numpy_stream(seed, 'pca_sketch').standard_normal((s, width))

  def z_times(m_SxL):  # Z @ M
    out = np.zeros((n, m_SxL.shape[1]))
    for sl, z in _standardised(train_NxS, mean, scale, snp_block):
      out += z @ m_SxL[sl]
    return out

  def zt_times(m_NxL):  # Zᵀ @ M
    out = np.zeros((s, m_NxL.shape[1]))
    for sl, z in _standardised(train_NxS, mean, scale, snp_block):
      out[sl] = z.T @ m_NxL
    return out

  q = np.linalg.qr(z_times(omega))[0]
  for _ in range(PCA_POWER_ITERATIONS):
    q = np.linalg.qr(z_times(np.linalg.qr(zt_times(q))[0]))[0]
  b_LxS = zt_times(q).T  # Qᵀ Z
  vals, vecs = np.linalg.eigh(b_LxS @ b_LxS.T)  # Qᵀ Z Zᵀ Q
  return vals[::-1][:k], (q @ vecs)[:, ::-1][:, :k]


def fit_pca(train_NxS: np.ndarray, num_pcs: int, snp_block: int = 4096, seed: int = 0) -> dict:
  """PCA of standardised genotypes ((x - 2p) / sqrt(2p(1-p))) fit on real train.

  Up to EXACT_PCA_MAX_PEOPLE people: the N x N Gram matrix accumulated over SNP blocks
  (exact). More: randomized subspace iteration (seeded by `seed`), which never forms an
  N x N matrix (100k people would need 80 GB) and matches the exact PCs' scores to ~1e-6
  on structured cohorts (tests/test_genetics.py).

  Returns:
    {'mean_S', 'scale_S', 'loadings_SxK', 'eigenvalues_K'}.
  """
  train_NxS = np.asarray(train_NxS)
  n, s = train_NxS.shape
  p = train_NxS.mean(0) / 2
  mean = 2 * p
  sd = np.sqrt(2 * p * (1 - p))
  scale = np.where(sd > 1e-6, 1 / np.maximum(sd, 1e-6), 0.0)
  k = min(num_pcs, n - 1)
  if n <= EXACT_PCA_MAX_PEOPLE:
    vals, vecs = _top_eigen_gram(train_NxS, mean, scale, k, snp_block)
  else:
    vals, vecs = _top_eigen_randomized(train_NxS, mean, scale, k, snp_block, seed)
  inv = 1 / np.sqrt(np.maximum(vals, 1e-12))
  loadings = np.zeros((s, k))
  for sl, z in _standardised(train_NxS, mean, scale, snp_block):
    loadings[sl] = (z.T @ vecs) * inv
  return {'mean_S': mean, 'scale_S': scale, 'loadings_SxK': loadings, 'eigenvalues_K': vals}


def project(pca: dict, dosage_NxS: np.ndarray, snp_block: int = 4096) -> np.ndarray:
  """Principal-component scores (N, K) of any cohort on the train PCA."""
  dosage_NxS = np.asarray(dosage_NxS)
  out = np.zeros((len(dosage_NxS), pca['loadings_SxK'].shape[1]))
  for a in range(0, dosage_NxS.shape[1], snp_block):
    sl = slice(a, a + snp_block)
    out += ((dosage_NxS[:, sl] - pca['mean_S'][sl]) * pca['scale_S'][sl]) @ pca['loadings_SxK'][sl]
  return out


def two_sample_auc(
  real_NxK: np.ndarray, syn_MxK: np.ndarray, k: int = 10, seed: int = 0, block_size: int = 1024
) -> float:
  """AUC of a 2-fold k-NN classifier real vs synthetic (equal sizes; 0.5 = same).

  The larger set is subsampled (seeded) to the size of the smaller; each half
  predicts the other: score = share of synthetic among the k nearest rows.
  """
  rng = rng_lib.numpy_stream(seed, 'two_sample_auc')
  n = min(len(real_NxK), len(syn_MxK))
  real = real_NxK[rng.permutation(len(real_NxK))[:n]]
  syn = syn_MxK[rng.permutation(len(syn_MxK))[:n]]
  x = np.concatenate([real, syn]).astype(np.float32)
  y = np.concatenate([np.zeros(n), np.ones(n)])
  x = x / np.maximum(x.std(0), 1e-12)
  fold = rng.permutation(2 * n) % 2
  scores = np.zeros(2 * n)
  for f in (0, 1):
    fit, held = fold != f, fold == f
    kk = min(k, int(fit.sum()))
    _, idx = distances.nearest(x[held], x[fit], 'euclidean', kk, block_size)
    scores[held] = y[fit][idx].mean(1)
  return privacy.auc(scores[y == 1], scores[y == 0])


# ------------------------------------------------------------- summary
def real_reference(
  train_NxS,
  holdout_NxS,
  chrom_S,
  max_lag: int,
  num_pcs: int,
  block_size: int = 1024,
  train_labels_N=None,
  num_classes: int = 0,
  pos_S=None,
) -> dict:
  """Everything about real train and the held-out split that every method is compared to.

  With `pos_S` (bp) the LD pairs' distance and MAF bins too (`ld_pair_bins`).
  """
  m_train = moments(train_NxS, max_lag, block_size)
  m_holdout = moments(holdout_NxS, max_lag, block_size)
  pca = fit_pca(train_NxS, num_pcs)
  r2_train, def_train = ld_r2(m_train, chrom_S)
  bins = (
    {}
    if pos_S is None
    else ld_pair_bins(pos_S, chrom_S, allele_frequencies(m_train), r2_train.shape[0])
  )
  return {
    **bins,
    'm_train': m_train,
    'm_holdout': m_holdout,
    'pca': pca,
    'r2_train': r2_train,
    'def_train': def_train,
    'pcs_train': project(pca, train_NxS),
    'pcs_holdout': project(pca, holdout_NxS),
    'het_train': heterozygosity(train_NxS),
    'het_holdout': heterozygosity(holdout_NxS),
    'fst_train': (
      group_fst(train_NxS, train_labels_N, num_classes, block_size) if num_classes > 1 else None
    ),
  }


def compare(
  ref: dict,
  dosage_NxS,
  chrom_S,
  max_lag: int,
  block_size: int = 1024,
  seed: int = 0,
  label_ids_N=None,
  real_pcs=None,
) -> tuple[dict, dict]:
  """Realism of one cohort (synthetic, or real held out as the reference) vs real train.

  Args:
    ref: from `real_reference`.
    dosage_NxS: the cohort to judge (int8).
    chrom_S: chromosome of each SNP (LD pairs stay within one).
    max_lag: LD band width in SNPs (evaluate.ld_max_distance_snps).
    block_size: rows per block.
    seed: seeds the two-sample classifier's subsample and folds.
    label_ids_N: labels of the cohort, for F_ST between label groups.
    real_pcs: real PCs it is told apart from (default the held-out split's; give
      train PCs when judging the held-out split itself).

  Returns:
    (metrics: flat dict of numbers, curves: arrays for plots: af, ld_decay, pcs, het,
    and with the reference's pair bins ld_distance and ld_maf: mean r² per bin).
  """
  m = moments(dosage_NxS, max_lag, block_size)
  af_train, af = allele_frequencies(ref['m_train']), allele_frequencies(m)
  gf_err = np.abs(genotype_frequencies(m) - genotype_frequencies(ref['m_train'])).mean()
  r2, defined = ld_r2(m, chrom_S)
  both = defined & ref['def_train']
  decay = np.array(
    [r2[k][defined[k]].mean() if defined[k].any() else np.nan for k in range(len(r2))]
  )
  pcs = project(ref['pca'], dosage_NxS)
  het = heterozygosity(dosage_NxS)
  metrics = {
    'af_r': _pearson(af, af_train),
    'af_mae': float(np.abs(af - af_train).mean()),
    'genotype_freq_mae': float(gf_err),
    'ld_r2_corr': _pearson(r2[both], ref['r2_train'][both]),
    'ld_r2_mean': float(r2[defined].mean()) if defined.any() else float('nan'),
    'ld_r2_mean_train': float(ref['r2_train'][ref['def_train']].mean())
    if ref['def_train'].any()
    else float('nan'),
    'pca_two_sample_auc': two_sample_auc(
      ref['pcs_holdout'] if real_pcs is None else real_pcs, pcs, seed=seed, block_size=block_size
    ),
    'het_mean': float(het.mean()),
    'het_sd': float(het.std()),
    'het_mean_train': float(ref['het_train'].mean()),
    'het_sd_train': float(ref['het_train'].std()),
  }
  if ref.get('fst_train') is not None and label_ids_N is not None:
    fst = group_fst(dosage_NxS, label_ids_N, len(ref['fst_train']), block_size)
    upper = np.triu_indices(len(fst), 1)
    metrics['fst_mean'] = float(np.nanmean(fst[upper]))
    metrics['fst_mean_train'] = float(np.nanmean(ref['fst_train'][upper]))
    metrics['fst_mae'] = float(np.nanmean(np.abs(fst[upper] - ref['fst_train'][upper])))
  curves = {'af': af, 'ld_decay': decay, 'pcs': pcs, 'het': het}
  for curve in ('ld_distance', 'ld_maf'):
    if f'{curve}_bin_KxS' in ref:
      curves[curve] = binned_mean(
        r2, defined, ref[f'{curve}_bin_KxS'], len(ref[f'{curve}_edges']) - 1
      )
  return metrics, curves
