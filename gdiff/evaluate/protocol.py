"""The evaluation protocol: which real people play which part, and what the report says about it.

Owns the choice of the held-out split (`HOLDOUTS`, evaluate.holdout) with the names
reports give it, the classifiers' real sets (train / select / report), the hard pair
(the two most similar classes) and the protocol notes written into the report.
Metric keys say `holdout` for the held-out split ('test' or 'val'); tables show the
split's display name instead (`named`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gdiff.evaluate import classifiers


@dataclasses.dataclass(frozen=True)
class Holdout:
  """One choice of evaluate.holdout."""

  name: str  # the real split held out: privacy non-members, realism reference; tables show it
  splits: tuple[str, ...]  # the real splits whose genotypes are read
  select_set: str  # where classifier steps are chosen (metrics.json classifier_sets)
  report_set: str  # where classifier accuracy is reported
  reported_on: str  # the same two sets, as report prose
  chosen_on: str


HOLDOUTS = {
  # The final report: the test split only reports.
  'test': Holdout('test', ('train', 'val', 'test'), 'val', 'test', 'real test', 'real val'),
  # Sweeps that tune settings: the test genotypes are never read; val is halved for
  # the classifiers (`classifier_sets`).
  'val': Holdout(
    'val',
    ('train', 'val'),
    'val (select half)',
    'val (report half)',
    'the report half of real val',
    'its select half',
  ),
}


def held_out(metrics: dict) -> Holdout:
  """The held-out split of a metrics dict (reports made before the option: 'test')."""
  return HOLDOUTS[metrics.get('holdout', 'test')]


def named(template: str, holdout: str) -> str:
  """A column or target name with the held-out split's display name filled in.

  'AA_truth {holdout}' -> 'AA_truth val'. A holdout that is not a key of HOLDOUTS
  (a table mixing several) is written as given.
  """
  return template.format(holdout=HOLDOUTS[holdout].name if holdout in HOLDOUTS else holdout)


def classifier_sets(holdout: str, emb: dict, lab: dict, seed: int) -> dict:
  """Real (x, y) sets of the classifiers: train, select (chooses the step), report.

  holdout 'test': select = val, report = test. holdout 'val': a seeded class-stratified
  split of val into halves, so the accuracy reported was not also used to choose the step.
  """
  sets = {'train': (emb['train'], lab['train'])}
  if holdout == 'test':
    sets['select'], sets['report'] = (emb['val'], lab['val']), (emb['test'], lab['test'])
  else:
    select, report_rows = classifiers.stratified_halves(lab['val'], seed)
    sets['select'] = emb['val'][select], lab['val'][select]
    sets['report'] = emb['val'][report_rows], lab['val'][report_rows]
  return sets


def hard_pair(fst_KxK: np.ndarray | None) -> tuple[int, int] | None:
  """The two most similar classes (lowest real-train F_ST), when there are > 2."""
  if fst_KxK is None or len(fst_KxK) < 3:
    return None
  masked = np.where(np.eye(len(fst_KxK), dtype=bool), np.inf, np.nan_to_num(fst_KxK, nan=np.inf))
  a, b = np.unravel_index(np.argmin(masked), masked.shape)
  return int(min(a, b)), int(max(a, b))


def restrict(x, y, pair):
  """The people of the two classes of `pair`, relabelled 0 (pair[0]) and 1 (pair[1])."""
  rows = np.isin(y, pair)
  return x[rows], (y[rows] == pair[1]).astype(np.int32)


def _holdout_notes(holdout: str, num_select: int, num_report: int) -> list[str]:
  """The protocol notes that depend on evaluate.holdout."""
  if holdout == 'test':
    return [
      'Held-out split: test. Generator and codec fit on real train; classifier steps '
      'chosen on REAL val for both the real-trained and the synthetic-trained model; '
      'test only reports.'
    ]
  return [
    "Held-out split: VAL (evaluate.holdout='val'); the test split was not read. "
    'Generator and codec fit on real train.',
    f'Privacy (non-members, DCR reference) and realism (reference row, PCA two-sample AUC) '
    f'use all of real val. Classifiers (utility, hard pair, augmentation) use a seeded, '
    f'class-stratified split of val: the select half ({num_select} people) chooses the '
    f'step for the real-trained and the synthetic-trained model alike, the report half '
    f'({num_report} people) gives the accuracy reported (and majority_acc_holdout).',
    "With sample.checkpoint='best' val also chose the generator's checkpoint (val "
    'diffusion loss), so val numbers may flatter gdiff slightly; report final numbers with '
    "evaluate.holdout='test'.",
  ]


def notes(
  holdout: str, num_select: int, num_report: int, counts_K, seed, pair_names: tuple[str, str] | None
) -> list[str]:
  """The protocol section of the report.

  Args:
    holdout: evaluate.holdout.
    num_select, num_report: people in the classifiers' select and report sets.
    counts_K: synthetic people per class (the baselines make as many).
    seed: the config's seed.
    pair_names: the hard pair's class names, or None when there is none.
  """
  held = HOLDOUTS[holdout].name
  out = _holdout_notes(holdout, num_select, num_report) + [
    f'Metric names containing "holdout" (aa_truth_holdout, dcr_holdout_p5, '
    f'majority_acc_holdout, ...) refer to the held-out split, here {held}.',
    'Synthetic genotypes are decoded, then re-encoded with the codec (what a user shares); '
    'privacy.embedding_as_sampled uses the embedding as sampled.',
    'NNAA on equal-size sets: n = min(n_real, n_synthetic), seeded subsample without '
    f'replacement of the larger set; privacy loss = AA_TS({held}) - AA_TS(train).',
    f'Membership inference: score = -(distance to nearest synthetic); train members vs '
    f'{held} non-members, balanced by subsampling the larger split.',
    'Augmentation: the generator saw all of real train, so gains are an upper bound.',
    f"Baselines use the synthetic cohort's label counts {[int(c) for c in counts_K]} and seed "
    f'{seed}.',
    "Recovery uses plain accuracy (the paper's); with unbalanced classes compare it with "
    'majority_acc_holdout and the balanced accuracies.',
    f'Realism reference row = real {held} judged like a synthetic cohort (its PCA AUC is '
    f'{held} vs train): the level sampling noise allows.',
    f'Detection AUC: a 5-fold cross-validated L2 logistic regression telling real {held} '
    f"people from a cohort's, on standardised dosages and products of SNPs 1-3 apart, "
    f'n = min(n_{held}, n_cohort, evaluate.detection_max_people) per side (± Hanley-McNeil '
    f'SE); its reference row is real train vs real {held}. Copies and shared segments '
    f"among a cohort's people are detectable too.",
    'Mosaic curve: rows mosaic@L copy runs of mean L SNPs from same-class training people; '
    'the dominance line reads the curve (sorted by genotype membership AUC, linear in '
    "between) at gdiff's membership AUC. LD by distance and by MAF bin: pairs at most "
    'evaluate.ld_max_distance_snps apart on one chromosome, binned by real-train MAF.',
  ]
  if pair_names is not None:
    out.append(
      f'utility_hard_pair: the two classes with the lowest real-train F_ST '
      f'({pair_names[0]} vs {pair_names[1]}), as a binary task.'
    )
  return out
