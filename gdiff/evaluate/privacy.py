"""Privacy and diversity of a synthetic cohort against real train and the held-out split.

Everything is computed from nearest-neighbour distances (`distances.nearest`,
blocked), in one space at a time: the angular distance on the embedding (as the
paper) or the Hamming distance on genotypes.

- NNAA (Yale et al. 2019): AA_truth = share of real people whose nearest synthetic
  person is farther than their nearest other real person; AA_syn = share of
  synthetic people whose nearest real person is farther than their nearest other
  synthetic person; AA_TS = mean (ideal 0.5 for each of the three). Computed
  against train and against the held-out split (evaluate.holdout: test or val;
  keys say `holdout`) on sets of one size n = min(n_train, n_holdout, n_syn)
  (seeded uniform subsamples without replacement; NNAA depends on n even without
  a leak), the train side averaged over up to 5 subsamples.
  Privacy loss = AA_TS(holdout) - AA_TS(train).
- Distance to closest record (DCR): synthetic -> train against the reference
  real held-out -> train.
- Identical copies (distance 0 to a training person) and near-copies (closer to
  a training person than any held-out person is).
- Membership inference: score = -(distance of a real person to the nearest
  synthetic person); members = train, non-members = held out, balanced by a seeded
  subsample of the larger side; AUC by ranks (Mann-Whitney).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.stats

from gdiff import rng as rng_lib
from gdiff.evaluate import distances


def auc(scores_pos: np.ndarray, scores_neg: np.ndarray) -> float:
  """Area under the ROC curve = P(score_pos > score_neg) + P(tie) / 2 (Mann-Whitney).

  Args:
    scores_pos: (P,) scores of the positive class (higher = more positive).
    scores_neg: (Q,) scores of the negative class.

  Returns:
    AUC in [0, 1].
  """
  scores_pos, scores_neg = np.ravel(scores_pos), np.ravel(scores_neg)
  p, q = len(scores_pos), len(scores_neg)
  if p == 0 or q == 0:
    return float('nan')
  ranks = scipy.stats.rankdata(np.concatenate([scores_pos, scores_neg]))  # ties averaged
  return float((ranks[:p].sum() - p * (p + 1) / 2) / (p * q))


def auc_standard_error(value: float, num_pos: int, num_neg: int) -> float:
  """Hanley & McNeil (1982) standard error of an AUC: the sampling noise to read it with."""
  q1, q2 = value / (2 - value), 2 * value**2 / (1 + value)
  var = (
    value * (1 - value) + (num_pos - 1) * (q1 - value**2) + (num_neg - 1) * (q2 - value**2)
  ) / (num_pos * num_neg)
  return float(np.sqrt(max(var, 0.0)))


def _nn1(query, reference, metric, block_size, exclude_self=False) -> np.ndarray:
  return distances.nearest(query, reference, metric, 1, block_size, exclude_self)[0][:, 0]


def nnaa(
  real,
  synthetic,
  metric: str = 'angular',
  block_size: int = 1024,
  d_real_real: np.ndarray | None = None,
) -> dict:
  """Nearest-neighbour adversarial accuracy of two sets (use equal sizes).

  Args:
    real: (n, ...) real embeddings or dosages.
    synthetic: (m, ...) synthetic ones.
    metric: a key of `distances.METRICS`.
    block_size: tile size of the distance search.
    d_real_real: optional precomputed nearest-other-real distances (n,).

  Returns:
    {'aa_truth', 'aa_syn', 'aa_ts'}.
  """
  if d_real_real is None:
    d_real_real = _nn1(real, real, metric, block_size, exclude_self=True)
  d_real_syn = _nn1(real, synthetic, metric, block_size)
  d_syn_syn = _nn1(synthetic, synthetic, metric, block_size, exclude_self=True)
  d_syn_real = _nn1(synthetic, real, metric, block_size)
  aa_truth = float(np.mean(d_real_syn > d_real_real))
  aa_syn = float(np.mean(d_syn_real > d_syn_syn))
  return {'aa_truth': aa_truth, 'aa_syn': aa_syn, 'aa_ts': 0.5 * (aa_truth + aa_syn)}


def _subsample(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
  return np.sort(rng.choice(n, size, replace=False)) if size < n else np.arange(n)


@dataclasses.dataclass
class Reference:
  """Real-side quantities shared by every method evaluated in one space."""

  metric: str
  block_size: int
  train: np.ndarray
  holdout: np.ndarray  # the held-out split (non-members)
  d_holdout_train: np.ndarray  # (n_holdout,) nearest train person of each held-out one
  seed: int
  _d_real_real: dict = dataclasses.field(default_factory=dict)

  def real_subset(self, split: str, size: int, repeat: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded subsample of a real split and its nearest-other-real distances (cached)."""
    key = (split, size, repeat)
    real = getattr(self, split)
    if key not in self._d_real_real:
      rng = rng_lib.numpy_stream(
        self.seed, 'privacy_real_subset', ('train', 'holdout').index(split), size, repeat
      )
      rows = _subsample(rng, len(real), size)
      self._d_real_real[key] = (
        rows,
        _nn1(real[rows], real[rows], self.metric, self.block_size, exclude_self=True),
      )
    rows, d = self._d_real_real[key]
    return real[rows], d


MAX_NNAA_REPEATS = 5


def make_reference(train, holdout, metric: str, block_size: int, seed: int = 0) -> Reference:
  """Precomputes the held-out -> train distances of one space."""
  d_holdout_train = _nn1(holdout, train, metric, block_size)
  return Reference(
    metric, block_size, np.asarray(train), np.asarray(holdout), d_holdout_train, seed
  )


def evaluate(
  ref: Reference, synthetic, seed: int = 0, copy_tolerance: float = 0.0
) -> tuple[dict, np.ndarray]:
  """All privacy and diversity metrics of one synthetic set in one space.

  Args:
    ref: from `make_reference` (real train and held out, same space as `synthetic`).
    synthetic: (m, ...) synthetic embeddings or dosages.
    seed: seeds the equal-size subsamples.
    copy_tolerance: distances <= this count as identical copies.

  Returns:
    (a flat dict of numbers (see the module docstring), the synthetic -> train
    nearest distances (m,) for histograms).
  """
  synthetic = np.asarray(synthetic)
  rng = rng_lib.numpy_stream(seed, 'privacy_subsample')
  out = {}
  # NNAA depends on the set size even without any leak, so train and held out are
  # compared at the same n; the larger train side is averaged over several
  # seeded subsamples to match the held-out side's noise.
  n = min(len(ref.train), len(ref.holdout), len(synthetic))
  for split in ('train', 'holdout'):
    repeats = max(1, min(MAX_NNAA_REPEATS, len(getattr(ref, split)) // n))
    values = []
    for r in range(repeats):
      real, d_rr = ref.real_subset(split, n, r)
      syn = synthetic[_subsample(rng, len(synthetic), n)]
      values.append(nnaa(real, syn, ref.metric, ref.block_size, d_rr))
    for name in values[0]:
      out[f'{name}_{split}'] = float(np.mean([v[name] for v in values]))
    out[f'nnaa_n_{split}'] = n
    out[f'nnaa_repeats_{split}'] = repeats
  out['privacy_loss'] = out['aa_ts_holdout'] - out['aa_ts_train']

  d_syn_train = _nn1(synthetic, ref.train, ref.metric, ref.block_size)
  p5_holdout = float(np.percentile(ref.d_holdout_train, 5))
  out.update(
    {
      'dcr_syn_median': float(np.median(d_syn_train)),
      'dcr_syn_p5': float(np.percentile(d_syn_train, 5)),
      'dcr_holdout_median': float(np.median(ref.d_holdout_train)),
      'dcr_holdout_p5': p5_holdout,
      'dcr_share_below_holdout_p5': float(np.mean(d_syn_train < p5_holdout)),
      'identical_copies': int(np.sum(d_syn_train <= copy_tolerance)),
      'near_copies': int(np.sum(d_syn_train < ref.d_holdout_train.min())),
      'num_synthetic': len(synthetic),
    }
  )

  n = min(len(ref.train), len(ref.holdout))
  members = ref.train[_subsample(rng, len(ref.train), n)]
  non_members = ref.holdout[_subsample(rng, len(ref.holdout), n)]
  d_members = _nn1(members, synthetic, ref.metric, ref.block_size)
  d_non_members = _nn1(non_members, synthetic, ref.metric, ref.block_size)
  out['mia_auc'] = auc(-d_members, -d_non_members)
  out['mia_auc_se'] = auc_standard_error(out['mia_auc'], n, n)
  out['mia_n'] = n
  return out, d_syn_train
