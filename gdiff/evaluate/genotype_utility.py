"""Utility on genotypes with the standard tools users run (scikit-learn).

Each classifier of `GENOTYPE_CLASSIFIERS` is trained on a cohort's dosages and tested
on the real report set (test, or val's report half); recovery = that accuracy / the
accuracy of the same classifier trained on real train (the paper's ratio, on genotypes
instead of the embedding). Nothing is chosen on the report set: the settings are fixed.

- 'logreg': L2 logistic regression (lbfgs, C = `LOGREG_C`) on dosages standardised with
  real train's mean and sd, all SNPs.
- 'hgb': HistGradientBoostingClassifier (`HGB_ITERATIONS` trees, no early stopping) on
  the `evaluate.genotype_max_snps` SNPs most associated with the label in real train
  (ANOVA F); gradient boosting's cost grows with the SNP count, and the selection, made
  once on real train, is the same for every cohort.

Both are deterministic given the training set, so one run per cohort (no seeds).
"""

from __future__ import annotations

import dataclasses
import logging
import warnings

import numpy as np

LOGREG_C = 1e-3  # strong L2: thousands of SNPs, hundreds to thousands of people
LOGREG_MAX_ITER = 200
HGB_ITERATIONS = 50
THREADS = 1  # see train_and_test


@dataclasses.dataclass(frozen=True)
class Features:
  """How real train turns dosages into a classifier's inputs (fit once, shared)."""

  mean_S: np.ndarray
  sd_S: np.ndarray
  top_snps: np.ndarray  # SNP indices for 'hgb', sorted

  def standardised(self, dosage_NxS: np.ndarray) -> np.ndarray:
    return ((np.asarray(dosage_NxS, np.float32) - self.mean_S) / self.sd_S).astype(np.float32)

  def top(self, dosage_NxS: np.ndarray) -> np.ndarray:
    return np.asarray(dosage_NxS[:, self.top_snps], np.float32)


def fit_features(dosage_NxS: np.ndarray, label_ids_N: np.ndarray, max_snps: int) -> Features:
  """Standardisation and the top `max_snps` SNPs by ANOVA F (0: all) of real train."""
  from sklearn.feature_selection import f_classif

  x = np.asarray(dosage_NxS, np.float32)
  s = x.shape[1]
  if max_snps <= 0 or max_snps >= s:
    top = np.arange(s)
  else:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')  # a monomorphic SNP has F = NaN: ranked last
      f, _ = f_classif(x, label_ids_N)
    top = np.sort(np.argsort(-np.nan_to_num(f, nan=-1.0), kind='stable')[:max_snps])
  return Features(x.mean(0), np.maximum(x.std(0), 1e-3), top)


def _logreg(features: Features, x_NxS, y_N):
  from sklearn.linear_model import LogisticRegression

  model = LogisticRegression(C=LOGREG_C, max_iter=LOGREG_MAX_ITER)
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # ConvergenceWarning: the fixed budget is the protocol
    model.fit(features.standardised(x_NxS), y_N)
  return lambda x: model.predict(features.standardised(x))


def _hgb(features: Features, x_NxS, y_N):
  from sklearn.ensemble import HistGradientBoostingClassifier

  model = HistGradientBoostingClassifier(
    max_iter=HGB_ITERATIONS, early_stopping=False, random_state=0
  )
  model.fit(features.top(x_NxS), y_N)
  return lambda x: model.predict(features.top(x))


# name -> fit(features, x_NxS, y_N) -> predict(x_NxS) -> labels
GENOTYPE_CLASSIFIERS = {'logreg': _logreg, 'hgb': _hgb}


def accuracy(y_true_N: np.ndarray, y_pred_N: np.ndarray, num_classes: int) -> dict:
  """Accuracy and balanced accuracy (mean recall of the classes present)."""
  y_true_N, y_pred_N = np.asarray(y_true_N), np.asarray(y_pred_N)
  correct = y_true_N == y_pred_N
  recalls = [correct[y_true_N == c].mean() for c in range(num_classes) if np.any(y_true_N == c)]
  return {'acc': float(correct.mean()), 'balanced_acc': float(np.mean(recalls))}


def train_and_test(name: str, features: Features, train, test, num_classes: int) -> dict:
  """Accuracy on `test` (x, y) of classifier `name` trained on `train` (x, y).

  On one BLAS/OpenMP thread: on a busy machine two threads made these fits 3-8x slower
  (docs/decisions.md#evaluate-report).
  """
  from threadpoolctl import threadpool_limits

  x, y = train
  if len(np.unique(y)) < 2:  # one class only: every prediction is that class
    return accuracy(test[1], np.full(len(test[1]), y[0]), num_classes)
  with threadpool_limits(THREADS):
    predict = GENOTYPE_CLASSIFIERS[name](features, x, y)
    return accuracy(test[1], predict(test[0]), num_classes)


def utility(names, features: Features, cohort, real: dict, test, num_classes: int) -> dict:
  """Recovery of each classifier trained on `cohort` (x, y).

  Args:
    names: keys of GENOTYPE_CLASSIFIERS.
    features: fit_features of real train.
    cohort: (dosage_NxS, label_ids_N) to train on.
    real: {name: train_and_test(...) of real train}, shared by every cohort.
    test: the real report set (dosage, labels).
    num_classes: number of labels.

  Returns:
    {name: {'acc_syn', 'acc_real', 'balanced_acc_syn', 'balanced_acc_real', 'recovery'}},
    plus 'recovery_min' and 'recovery_mean' over the classifiers.
  """
  out = {}
  for name in names:
    syn = train_and_test(name, features, cohort, test, num_classes)
    out[name] = {
      'acc_syn': syn['acc'],
      'acc_real': real[name]['acc'],
      'balanced_acc_syn': syn['balanced_acc'],
      'balanced_acc_real': real[name]['balanced_acc'],
      'recovery': syn['acc'] / max(real[name]['acc'], 1e-12),
    }
    logging.info(
      'genotype utility %s: acc syn %.3f real %.3f recovery %.3f',
      name,
      syn['acc'],
      real[name]['acc'],
      out[name]['recovery'],
    )
  if out:
    rec = [v['recovery'] for v in out.values()]
    out['recovery_min'], out['recovery_mean'] = float(min(rec)), float(np.mean(rec))
  return out
