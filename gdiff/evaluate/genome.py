"""Genome-wide checks: what only a genome stitched from independent segments can fail.

A segment model (`gdiff.ar.segments`) sees one chromosome; what ties a person's
chromosomes together is their class label and, with `ar.ancestry_pcs` > 0, the shared
ancestry code. Two checks, computed the same way for every cohort (gdiff, each baseline,
the real held-out people and real train), reported under `realism.genome`:

  inter-chromosome correlation   Pearson r of dosages over a seeded sample of SNP pairs
                                 on different chromosomes (the same pairs for every
                                 cohort): mean r, mean |r| and r² excess overall
                                 (population structure raises |r| and r², while r's
                                 sign follows the arbitrary allele coding) and within
                                 each class (mean over classes; at the noise floor in
                                 a population without substructure). `r2_excess` is
                                 mean r² − 1/(n−1): 0 for independent chromosomes at
                                 any cohort size n, unlike |r|, whose noise floor
                                 falls with n.
  per-chromosome PC1 agreement   within each class, PC1 of real train fit on one
                                 chromosome's SNPs, each person of the cohort projected
                                 on it; |correlation across people| of two chromosomes'
                                 scores, averaged over chromosome pairs, then classes
                                 (also per class, by label id, and as r² excess,
                                 mean r² − 1/(n−1), free of the size's noise floor).
                                 Real people of an admixed class agree (their ancestry
                                 fraction is genome-wide); chromosomes drawn
                                 independently given the label do not.

Cohorts with fewer than 2 chromosomes get no values (the report says why).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import scipy.linalg

MIN_PEOPLE = 5  # per class, on both sides, for a within-class value
NOTE_ONE_CHROMOSOME = 'genome-wide checks skipped: the cohort has fewer than 2 chromosomes'
COLUMNS = (
  ('r_mean', 'mean r'),
  ('abs_r_mean', 'mean abs r'),
  ('r2_excess', 'r² excess'),
  ('r_within', 'mean r within class'),
  ('abs_r_within', 'mean abs r within class'),
  ('r2_excess_within', 'r² excess within'),
  ('pc1_agreement', 'PC1 agreement within class'),
  ('pc1_r2_excess', 'PC1 r² excess within class'),
)


@dataclasses.dataclass(frozen=True)
class Reference:
  """What every cohort is compared on: the SNP pairs and real train's PC1 axes."""

  pair_i: np.ndarray  # (P,) SNP index of each pair's first SNP
  pair_j: np.ndarray  # (P,) the second, on another chromosome
  # class id -> [(SNP indices, train mean, loading)] per chromosome, PC1 of real train
  axes: dict


def chromosomes(chrom_S: np.ndarray) -> list[np.ndarray]:
  """SNP indices of each chromosome (in order of first appearance)."""
  chrom_S = np.asarray(chrom_S).astype(str)
  _, first, inverse = np.unique(chrom_S, return_index=True, return_inverse=True)
  order = np.argsort(first)
  return [np.flatnonzero(inverse == k) for k in order]


def reference(
  train_NxS: np.ndarray,
  train_labels_N: np.ndarray,
  chrom_S: np.ndarray,
  rng: np.random.Generator,
  num_pairs: int = 4000,
  max_snps_per_chromosome: int = 2000,
) -> Reference | None:
  """The pairs and PC1 axes of real train; None with fewer than 2 chromosomes."""
  chroms = chromosomes(chrom_S)
  if len(chroms) < 2:
    return None
  chrom_id = np.empty(len(chrom_S), np.int64)
  for k, idx in enumerate(chroms):
    chrom_id[idx] = k
  i = rng.integers(0, len(chrom_S), 4 * num_pairs)
  j = rng.integers(0, len(chrom_S), 4 * num_pairs)
  keep = chrom_id[i] != chrom_id[j]
  pair_i, pair_j = i[keep][:num_pairs], j[keep][:num_pairs]
  axes = {}
  for c in np.unique(train_labels_N):
    x = train_NxS[train_labels_N == c].astype(np.float64)
    if len(x) < MIN_PEOPLE:
      continue
    per_chrom = []
    for idx in chroms:
      if len(idx) > max_snps_per_chromosome:
        idx = np.sort(rng.choice(idx, max_snps_per_chromosome, replace=False))
      xc = x[:, idx]
      mean = xc.mean(0)
      per_chrom.append((idx, mean, _pc1_loading(xc - mean)))
    axes[int(c)] = per_chrom
  return Reference(pair_i, pair_j, axes)


def _pc1_loading(xc_NxS: np.ndarray) -> np.ndarray:
  """Unit PC1 loading (S,) of centred data (its sign is arbitrary: only |r| and r² use it).

  The top eigenvector alone (LAPACK's syevr, `subset_by_index`), of the smaller of the two
  Gram matrices: SNPs x SNPs directly, or people x people mapped through Xᵀ.
  """
  n, s = xc_NxS.shape
  people = n < s
  gram = xc_NxS @ xc_NxS.T if people else xc_NxS.T @ xc_NxS
  size = len(gram)
  _, v = scipy.linalg.eigh(gram, subset_by_index=(size - 1, size - 1), driver='evr')
  loading = xc_NxS.T @ v[:, 0] if people else v[:, 0]
  norm = np.linalg.norm(loading)
  return loading / norm if norm > 0 else loading


PAIR_BLOCK = 512  # SNP pairs per product pass of _pair_r


def _pair_r(x_NxS: np.ndarray, pair_i: np.ndarray, pair_j: np.ndarray) -> np.ndarray:
  """Pearson r of each SNP pair's dosages across people (nan where a SNP is constant)."""
  n = len(x_NxS)
  # SNP-major (C order): a pair's SNPs are two contiguous rows.
  z_SxN = np.array(np.asarray(x_NxS).T, np.float64, order='C')
  z_SxN -= z_SxN.mean(1, keepdims=True)
  sd = np.sqrt(np.einsum('sn,sn->s', z_SxN, z_SxN) / n)
  cov = np.concatenate(
    [
      np.einsum('pn,pn->p', z_SxN[pair_i[a : a + PAIR_BLOCK]], z_SxN[pair_j[a : a + PAIR_BLOCK]])
      for a in range(0, len(pair_i), PAIR_BLOCK)
    ]
    + [np.zeros(0)]
  )
  with np.errstate(invalid='ignore', divide='ignore'):
    return cov / n / (sd[pair_i] * sd[pair_j])


def _summary(r: np.ndarray, n: int) -> tuple[float, float, float]:
  r = r[np.isfinite(r)]
  if not len(r) or n < 3:
    return float('nan'), float('nan'), float('nan')
  return float(r.mean()), float(np.abs(r).mean()), float((r**2).mean() - 1.0 / (n - 1))


def _nanmean(values) -> float:
  values = [v for v in values if np.isfinite(v)]
  return float(np.mean(values)) if values else float('nan')


def checks(ref: Reference | None, dosage_NxS: np.ndarray, label_ids_N: np.ndarray) -> dict | None:
  """The genome-wide checks of one cohort (see the module docstring); None without `ref`."""
  if ref is None:
    return None
  overall = _summary(_pair_r(dosage_NxS, ref.pair_i, ref.pair_j), len(dosage_NxS))
  out = dict(zip(('r_mean', 'abs_r_mean', 'r2_excess'), overall))
  within, agreement = [], []
  for c in np.unique(label_ids_N):
    x = dosage_NxS[label_ids_N == c]
    if len(x) < MIN_PEOPLE:
      continue
    within.append(_summary(_pair_r(x, ref.pair_i, ref.pair_j), len(x)))
    if int(c) not in ref.axes:
      continue
    scores = [(x[:, idx] - mean) @ loading for idx, mean, loading in ref.axes[int(c)]]
    pairs = []
    for a, b in itertools.combinations(scores, 2):
      if a.std() > 0 and b.std() > 0:
        pairs.append(float(np.corrcoef(a, b)[0, 1]))
    pairs = np.asarray(pairs)
    agreement.append((int(c), _nanmean(np.abs(pairs)), _nanmean(pairs**2) - 1.0 / (len(x) - 1)))
  for k, name in enumerate(('r_within', 'abs_r_within', 'r2_excess_within')):
    out[name] = _nanmean([w[k] for w in within])
  out['pc1_agreement'] = _nanmean([a[1] for a in agreement])
  out['pc1_r2_excess'] = _nanmean([a[2] for a in agreement])
  out['pc1_agreement_by_class'] = {str(c): a for c, a, _ in agreement}  # label id -> value
  return out


def table(metrics: dict) -> tuple[list[str], list[list]] | str:
  """The report's table of `realism.genome` (rows: real train, real held-out, each method),
  or the line that says why there is none."""
  from gdiff.evaluate import protocol, report

  def row(name, values):
    return [name, *(report._fmt(values.get(k)) for k, _ in COLUMNS)]

  rows = []
  ref = metrics.get('reference', {}).get('realism', {})
  if ref.get('genome_train'):
    rows.append(row('real train', ref['genome_train']))
  if ref.get('genome'):
    rows.append(row(f'real {protocol.held_out(metrics).name} (reference)', ref['genome']))
  for name, r in metrics['methods'].items():
    if report.lookup(r, 'realism.genome'):
      rows.append(row(name, r['realism']['genome']))
  if not rows:
    return NOTE_ONE_CHROMOSOME
  return ['cohort', *(label for _, label in COLUMNS)], rows


CAPTION = (
  'Genome-wide checks (gdiff.evaluate.genome): inter-chromosome dosage correlation over '
  'the same seeded SNP pairs on different chromosomes (overall and within class), and the '
  'within-class agreement of PC1 (axes fit on real train, one per chromosome) across '
  'chromosomes. Near the real rows is good; r² excess is about 0 for independent chromosomes.'
)


def html(metrics: dict) -> str:
  """The report.html section."""
  from html import escape

  from gdiff.evaluate import report

  t = table(metrics)
  if isinstance(t, str):
    return f'<p>{escape(t)}</p>'
  return f'<h3>Genome-wide checks</h3><p>{escape(CAPTION)}</p>' + report._html_table(*t)


def markdown(metrics: dict) -> list[str]:
  """The report.md lines."""
  from gdiff.evaluate import report

  t = table(metrics)
  if isinstance(t, str):
    return [t, '']
  return ['### Genome-wide checks', '', CAPTION, '', report._md_table(*t), '']
