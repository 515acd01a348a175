"""Tests for gdiff.evaluate.detection: known answers of the whole-genotype detection AUC."""

import evaluate_testdata as td
import numpy as np
import pytest
import scipy.optimize

from gdiff.evaluate import detection, privacy

S = 60
CHROM = np.repeat(['1', '2'], S // 2)


def _auc(real, judged, chrom=CHROM, **kwargs):
  return detection.detection_auc(real, judged, chrom, np.random.default_rng(0), **kwargs)


def _independent(real, seed):
  """Every SNP drawn alone from the real allele frequency: no LD at all."""
  p = real.mean(0) / 2
  return np.random.default_rng(seed).binomial(2, p, size=real.shape).astype(np.int8)


def test_independent_snps_are_told_apart_and_a_second_draw_is_not():
  real, _ = td.ld_cohort(120, S, seed=0)
  fresh, _ = td.ld_cohort(150, S, seed=1)  # the same generator, other people
  indep = _auc(real, _independent(real, 2))
  assert indep['detection_auc'] > 0.95 and indep['detection_n'] == 120
  same = _auc(real, fresh)
  assert same['detection_n'] == 120
  assert abs(same['detection_auc'] - 0.5) < 3 * same['detection_auc_se']
  assert 0.02 < same['detection_auc_se'] < 0.06  # Hanley–McNeil at n = 120 per side


def test_products_stay_within_a_chromosome():
  # With every SNP on a chromosome of its own there is no product feature left, and a
  # linear model on dosages cannot see what the independent sampler lost (LD only).
  real, _ = td.ld_cohort(120, S, seed=0)
  alone = _auc(real, _independent(real, 2), chrom=np.arange(S).astype(str))
  assert abs(alone['detection_auc'] - 0.5) < 3 * alone['detection_auc_se']


def _explicit_scores(x, y, fold, chrom):
  """The recipe written out: whole feature matrices and the primal problem (L-BFGS)."""
  scores = np.zeros(len(y))
  for f in range(detection.FOLDS):
    tr, te = fold != f, fold == f
    mean, sd = x[tr].mean(0), x[tr].std(0) + 1e-3
    z = (x - mean) / sd
    feats = [z] + [
      z[:, :-k][:, chrom[:-k] == chrom[k:]] * z[:, k:][:, chrom[:-k] == chrom[k:]]
      for k in (1, 2, 3)
    ]
    feats = np.concatenate(feats, 1)
    feats = (feats - feats[tr].mean(0)) / (feats[tr].std(0) + 1e-3)

    def objective(w, a=feats[tr], b=y[tr]):
      margin = b * (a @ w)
      s = 0.5 * (1 - np.tanh(0.5 * margin))
      return np.logaddexp(0, -margin).sum() + 0.5 * w @ w, -a.T @ (b * s) + w

    w = scipy.optimize.minimize(
      objective,
      np.zeros(feats.shape[1]),
      jac=True,
      method='L-BFGS-B',
      options={'gtol': 1e-10, 'maxiter': 5000},
    ).x
    scores[te] = feats[te] @ w
  return scores


def test_blocked_dual_fit_equals_the_primal_on_whole_features():
  real, _ = td.ld_cohort(40, 24, seed=0)
  syn = _independent(real, 3)
  chrom = np.repeat(['1', '2'], 12)
  n = 40
  rng = np.random.default_rng(0)  # the draws detection_auc makes, in its order
  x = np.concatenate([real[rng.permutation(n)[:n]], syn[rng.permutation(n)[:n]]])
  y = np.r_[-np.ones(n), np.ones(n)]
  scores = _explicit_scores(x.astype(float), y, rng.permutation(2 * n) % 5, chrom)
  want = privacy.auc(scores[y > 0], scores[y < 0])
  assert want > 0.8  # the data are told apart: the ranks below are not noise
  for block in (5, 0):  # blocks that split the lag products across block edges; one block
    got = _auc(real, syn, chrom=chrom, snp_block=block)['detection_auc']
    assert got == pytest.approx(want, abs=1e-9)


def test_fit_and_score_solves_the_logistic_regression():
  rng = np.random.default_rng(0)
  f_train, f_test = rng.standard_normal((30, 8)), rng.standard_normal((7, 8))
  y = np.where(f_train[:, 0] + 0.5 * rng.standard_normal(30) > 0, 1.0, -1.0)
  w = scipy.optimize.minimize(
    lambda w: np.logaddexp(0, -y * (f_train @ w)).sum() + 0.5 * w @ w,
    np.zeros(8),
    method='BFGS',
    options={'gtol': 1e-10},
  ).x
  got = detection.fit_and_score(f_train @ f_train.T, f_test @ f_train.T, y)
  np.testing.assert_allclose(got, f_test @ w, atol=1e-5)


def test_max_people_caps_each_side():
  real, _ = td.ld_cohort(80, S, seed=0)
  fresh, _ = td.ld_cohort(90, S, seed=1)
  capped = _auc(real, fresh, max_people=30)
  assert capped['detection_n'] == 30
  assert capped['detection_auc_se'] > _auc(real, fresh)['detection_auc_se']


def _newton_with_the_hessian(z_NxR, y_N):
  """The recipe's damped Newton solving with the R x R Hessian C·ZᵀWZ + I itself."""
  beta = np.zeros(z_NxR.shape[1])
  for _ in range(detection.NEWTON_STEPS):
    s = 0.5 * (1 - np.tanh(0.5 * y_N * (z_NxR @ beta)))
    grad = -detection.C * z_NxR.T @ (y_N * s) + beta
    hess = detection.C * (z_NxR.T * (s * (1 - s))) @ z_NxR + np.eye(len(beta))
    step = np.linalg.solve(hess, grad)
    t, before = 1.0, detection._objective(z_NxR, y_N, beta)
    while detection._objective(z_NxR, y_N, beta - t * step) > before and t > 1e-4:
      t /= 2
    beta = beta - t * step
    if np.abs(t * step).max() < 1e-6:
      break
  return beta


@pytest.mark.parametrize('rank', [60, 35])  # every eigenvalue kept; some dropped (R < N)
def test_newton_through_woodbury_takes_the_hessians_steps(rank):
  rng = np.random.default_rng(rank)
  z = rng.standard_normal((60, rank)) * np.geomspace(30, 0.1, rank)  # an uneven spectrum
  y = np.where(z[:, 0] + z[:, 1] + rng.standard_normal(60) > 0, 1.0, -1.0)
  want = _newton_with_the_hessian(z, y)
  np.testing.assert_allclose(detection._newton(z, y), want, rtol=1e-9, atol=1e-12)
