"""Tests for gdiff.evaluate.classifiers (tiny shapes, few steps)."""

import jax
import numpy as np
import pytest

from gdiff.evaluate import classifiers


def _separable(n, seed, g=8, c=2):
  """Class = sign of a fixed direction, plus noise: linearly separable-ish."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, g, c)).astype(np.float32)
  y = (x[:, 0, 0] + x[:, 1, 1] > 0).astype(np.int32)
  x[:, 0, 0] += np.where(y == 1, 1.0, -1.0)
  return x, y


@pytest.mark.parametrize('name', sorted(classifiers.CLASSIFIERS))
def test_every_classifier_learns_a_separable_task(name):
  train, val, test = _separable(256, 0), _separable(64, 1), _separable(128, 2)
  params, val_acc, step = classifiers.fit(name, train, val, 2, steps=60, seed=0, eval_every=20)
  assert step in (20, 40, 60) and val_acc > 0.75
  assert classifiers.accuracy(name, params, *test, 2)['acc'] > 0.75


def test_recovery_is_one_when_synthetic_is_a_copy_of_train():
  train, val, test = _separable(200, 0), _separable(64, 1), _separable(100, 2)
  real = {'logreg': classifiers.train_and_test('logreg', train, val, test, 2, 40, [0, 1])}
  copy = (train[0].copy(), train[1].copy())
  out = classifiers.utility(['logreg'], copy, real, val, test, 2, 40, [0, 1])
  assert out['logreg']['recovery']['values'] == [1.0, 1.0]
  assert out['logreg']['recovery']['sd'] == 0.0


def test_wrong_labels_give_low_recovery_and_one_trace_per_shape():
  train, val, test = _separable(200, 0), _separable(64, 1), _separable(100, 2)
  real = {'logreg': classifiers.train_and_test('logreg', train, val, test, 2, 40, [0])}
  flipped = (train[0], 1 - train[1])
  out = classifiers.utility(['logreg'], flipped, real, val, test, 2, 40, [0])
  assert out['logreg']['recovery']['mean'] < 0.5
  _, step, counts = classifiers._functions('logreg', 2, (8, 2))
  assert step._cache_size() == 1 and counts._cache_size() == 1


def test_accuracy_and_balanced_accuracy_hand_case():
  # A logreg with zero weights and a bias for class 0 predicts 0 everywhere.
  x = np.zeros((5, 8, 2), np.float32)
  y = np.array([0, 0, 0, 0, 1], np.int32)
  params = {
    'Dense_0': {'kernel': np.zeros((16, 2), np.float32), 'bias': np.array([1.0, 0.0], np.float32)}
  }
  out = classifiers.accuracy('logreg', params, x, y, 2)
  assert out == {'acc': 0.8, 'balanced_acc': 0.5}


def test_stratified_fraction_and_augmentation_curve():
  y = np.array([0] * 80 + [1] * 20)
  rows = classifiers.stratified_fraction(y, 0.1, seed=0)
  assert np.sum(y[rows] == 0) == 8 and np.sum(y[rows] == 1) == 2
  train, val, test = _separable(200, 0), _separable(64, 1), _separable(100, 2)
  curve = classifiers.augmentation('logreg', train, train, val, test, 2, 20, [0], (0.05, 0.5))
  assert curve['fractions'] == [0.05, 0.5]
  assert len(curve['real_only']) == 2 and len(curve['real_plus_synthetic']) == 2


def test_transformer_caps_the_token_count():
  model = classifiers.Transformer(num_classes=2)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), np.zeros((1, 3000, 2), np.float32))
  assert shapes['params']['pos'].shape == (250, 64)  # 12 groups per token, not 8
