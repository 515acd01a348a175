"""Utility of a synthetic cohort: small JAX/Flax classifiers trained on it, tested on real data.

Classifiers are picked by name from `CLASSIFIERS` (logreg, mlp, cnn, transformer)
and read the (N, G, C) embedding (flattened by logreg/mlp, as a sequence by the
others). Protocol (the paper's, with honest splits):

- train on synthetic -> accuracy on the real report set; train on real train ->
  accuracy on the real report set; recovery = acc_syn / acc_real, over `seeds`
  seeds (mean ± sd).
- The training step is chosen by accuracy on the REAL selection set for both models
  (the synthetic-trained one too: a user without val data would need synthetic
  val, which flatters it); the report set is never used for selection.
- The evaluate stage picks the two sets (evaluate.holdout): selection = real val,
  report = real test; or, with holdout 'val', the two halves of real val from
  `stratified_halves`. The functions below call them `val` and `test`.
- Augmentation: a class-stratified fraction of real train alone vs that fraction
  plus all synthetic people. The generator saw all of real train, so the gain is
  an upper bound.

Steps are jitted once per (classifier, classes, input shape): batches have a fixed
size and evaluation runs on fixed-size padded blocks returning per-class sums.
"""

from __future__ import annotations

import functools
import logging

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gdiff import rng as rng_lib
from gdiff import xla_cpu


class LogReg(nn.Module):
  num_classes: int

  @nn.compact
  def __call__(self, x_BxGxC):
    # Zero init: a random start on thousands of inputs would take many steps to forget.
    dense = nn.Dense(self.num_classes, kernel_init=nn.initializers.zeros)
    return dense(x_BxGxC.reshape(x_BxGxC.shape[0], -1))


class MLP(nn.Module):
  num_classes: int
  widths: tuple[int, ...] = (128, 64)

  @nn.compact
  def __call__(self, x_BxGxC):
    h = x_BxGxC.reshape(x_BxGxC.shape[0], -1)
    for w in self.widths:
      h = nn.gelu(nn.Dense(w)(h))
    return nn.Dense(self.num_classes)(h)


class CNN(nn.Module):
  """1D convolutions over the group axis G with the C slots as channels."""

  num_classes: int
  channels: tuple[int, ...] = (32, 32, 64)

  @nn.compact
  def __call__(self, x_BxGxC):
    h = x_BxGxC
    for i, ch in enumerate(self.channels):
      h = nn.gelu(nn.Conv(ch, (5,), strides=(1 if i == 0 else 2,))(h))
    return nn.Dense(self.num_classes)(jnp.mean(h, axis=1))


class Transformer(nn.Module):
  """Tokens of consecutive groups, learned positions, mean pooling.

  At least `groups_per_token` groups per token, more when needed to keep at most
  `max_tokens` tokens (attention memory grows with the square of the token count).
  """

  num_classes: int
  groups_per_token: int = 8
  max_tokens: int = 256
  dim: int = 64
  heads: int = 4
  layers: int = 2

  @nn.compact
  def __call__(self, x_BxGxC):
    b, g, c = x_BxGxC.shape
    per_token = max(self.groups_per_token, -(-g // self.max_tokens))
    pad = -g % per_token
    x = jnp.pad(x_BxGxC, ((0, 0), (0, pad), (0, 0)))
    tokens = x.reshape(b, -1, per_token * c)
    h = nn.Dense(self.dim)(tokens)
    h = h + self.param('pos', nn.initializers.normal(0.02), h.shape[1:])
    for _ in range(self.layers):
      h = h + nn.MultiHeadDotProductAttention(num_heads=self.heads)(nn.LayerNorm()(h))
      y = nn.Dense(self.dim)(nn.gelu(nn.Dense(2 * self.dim)(nn.LayerNorm()(h))))
      h = h + y
    return nn.Dense(self.num_classes)(jnp.mean(nn.LayerNorm()(h), axis=1))


CLASSIFIERS = {'logreg': LogReg, 'mlp': MLP, 'cnn': CNN, 'transformer': Transformer}
# Adam learning rates; the convex logistic regression tolerates (and needs, in a few
# hundred steps) a larger one.
LEARNING_RATES = {'logreg': 1e-2, 'mlp': 1e-3, 'cnn': 1e-3, 'transformer': 1e-3}

BATCH_SIZE = 64
EVAL_BLOCK = 256
WEIGHT_DECAY = 1e-4


def _train_step(state, x_BxGxC, y_B, *, model, tx):
  def loss_fn(params):
    logits = model.apply({'params': params}, x_BxGxC)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y_B).mean()

  loss, grads = jax.value_and_grad(loss_fn)(state['params'])
  updates, opt_state = tx.update(grads, state['opt_state'], state['params'])
  return {'params': optax.apply_updates(state['params'], updates), 'opt_state': opt_state}, loss


def _class_counts(params, x_BxGxC, y_B, valid_B, *, model, num_classes):
  """Per-class (correct, total) sums of one block; the host adds blocks."""
  pred = jnp.argmax(model.apply({'params': params}, x_BxGxC), -1)
  onehot = jax.nn.one_hot(y_B, num_classes) * valid_B[:, None]
  return jnp.sum(onehot * (pred == y_B)[:, None], 0), jnp.sum(onehot, 0)


@functools.cache
def _functions(name: str, num_classes: int, shape_GxC: tuple[int, int]):
  """Jitted (init, step, counts) for one classifier and input shape (cached: one trace)."""
  model = CLASSIFIERS[name](num_classes=num_classes)
  tx = optax.adamw(LEARNING_RATES[name], weight_decay=WEIGHT_DECAY)

  def init(key):
    params = model.init(key, jnp.zeros((1,) + shape_GxC, jnp.float32))['params']
    return {'params': params, 'opt_state': tx.init(params)}

  step = jax.jit(
    functools.partial(_train_step, model=model, tx=tx),
    donate_argnums=0,
    compiler_options=xla_cpu.step_options(jax.default_backend()),
  )
  counts = jax.jit(functools.partial(_class_counts, model=model, num_classes=num_classes))
  return jax.jit(init), step, counts


def accuracy(name: str, params, x_NxGxC, y_N, num_classes: int) -> dict:
  """Accuracy and balanced accuracy (mean per-class recall) on a labelled set."""
  _, _, counts = _functions(name, num_classes, tuple(x_NxGxC.shape[1:]))
  correct, total = np.zeros(num_classes), np.zeros(num_classes)
  for a in range(0, len(x_NxGxC), EVAL_BLOCK):
    x, y = x_NxGxC[a : a + EVAL_BLOCK], y_N[a : a + EVAL_BLOCK]
    valid = np.arange(EVAL_BLOCK) < len(x)
    pad = EVAL_BLOCK - len(x)
    x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], np.float32)])
    y = np.concatenate([y, np.zeros(pad, np.int32)])
    c, t = counts(params, x, y, valid.astype(np.float32))
    correct += np.asarray(c)
    total += np.asarray(t)
  present = total > 0
  return {
    'acc': float(correct.sum() / max(total.sum(), 1)),
    'balanced_acc': float(np.mean(correct[present] / total[present])),
  }


def fit(
  name: str,
  train: tuple[np.ndarray, np.ndarray],
  val: tuple[np.ndarray, np.ndarray],
  num_classes: int,
  steps: int,
  seed: int,
  eval_every: int | None = None,
):
  """Trains one classifier; keeps the parameters of the step with the best val accuracy.

  Args:
    name: a key of CLASSIFIERS.
    train: (x_NxGxC float32, y_N int32) to train on.
    val: real validation split, used only to choose the step.
    num_classes: number of labels.
    steps: optimiser steps (evaluate.classifier_steps).
    seed: seeds initialisation and batch order.
    eval_every: steps between val evaluations (default steps // 10).

  Returns:
    (params of the best val step, best val accuracy, that step).
  """
  if name not in CLASSIFIERS:
    raise KeyError(f'unknown classifier {name!r}; expected one of {sorted(CLASSIFIERS)}')
  x, y = np.asarray(train[0], np.float32), np.asarray(train[1], np.int32)
  init, step, _ = _functions(name, num_classes, tuple(x.shape[1:]))
  state = init(rng_lib.stream(seed, 'init'))
  rng = rng_lib.numpy_stream(seed, 'classifier_batches')
  eval_every = eval_every or max(steps // 10, 1)
  best = (-1.0, None, 0)
  for i in range(1, steps + 1):
    rows = rng.integers(0, len(x), BATCH_SIZE)
    state, _ = step(state, x[rows], y[rows])
    if i % eval_every == 0 or i == steps:
      acc = accuracy(name, state['params'], val[0], val[1], num_classes)['acc']
      if acc > best[0]:
        # A device copy: the state is donated to the next step, and host (numpy)
        # params would make the evaluation function trace a second time.
        best = (acc, jax.tree.map(jnp.copy, state['params']), i)
  return best[1], best[0], best[2]


def _mean_sd(values) -> dict:
  values = np.asarray(values, float)
  return {
    'mean': float(values.mean()),
    'sd': float(values.std(ddof=1)) if len(values) > 1 else 0.0,
    'values': values.tolist(),
  }


def train_and_test(name: str, train, val, test, num_classes: int, steps: int, seeds) -> dict:
  """Test accuracy of `name` trained on `train` (chosen on `val`), over seeds."""
  acc, bacc, chosen = [], [], []
  for seed in seeds:
    params, _, step = fit(name, train, val, num_classes, steps, seed)
    result = accuracy(name, params, test[0], test[1], num_classes)
    acc.append(result['acc'])
    bacc.append(result['balanced_acc'])
    chosen.append(step)
  return {'acc': _mean_sd(acc), 'balanced_acc': _mean_sd(bacc), 'chosen_steps': chosen}


def utility(
  names, synthetic, real_results: dict, val, test, num_classes: int, steps: int, seeds
) -> dict:
  """Train-on-synthetic vs train-on-real for each classifier; recovery per seed.

  Args:
    names: classifier names.
    synthetic: (x_NxGxC, y_N) synthetic training set.
    real_results: {name: train_and_test(...) on real train}, shared by all methods.
    val, test: real (x, y) splits.
    num_classes: number of labels.
    steps: optimiser steps per run.
    seeds: seeds (those of real_results, or their first few: recovery pairs runs by seed).

  Returns:
    {name: {'acc_syn', 'acc_real', 'recovery', 'balanced_acc_syn', ...}}.
  """
  out = {}
  for name in names:
    syn = train_and_test(name, synthetic, val, test, num_classes, steps, seeds)
    real = real_results[name]
    real_acc = np.asarray(real['acc']['values'])[: len(seeds)]
    ratio = np.asarray(syn['acc']['values']) / np.maximum(real_acc, 1e-12)
    out[name] = {
      'acc_syn': syn['acc'],
      'acc_real': real['acc'],
      'balanced_acc_syn': syn['balanced_acc'],
      'balanced_acc_real': real['balanced_acc'],
      'recovery': _mean_sd(ratio),
      'chosen_steps_syn': syn['chosen_steps'],
    }
    logging.info(
      'utility %s: acc syn %.3f real %.3f recovery %.3f',
      name,
      syn['acc']['mean'],
      real['acc']['mean'],
      out[name]['recovery']['mean'],
    )
  return out


def stratified_fraction(y_N: np.ndarray, fraction: float, seed: int) -> np.ndarray:
  """Rows of a class-stratified subsample (at least one person per class present)."""
  rng = rng_lib.numpy_stream(seed, 'stratified_fraction')
  rows = []
  for c in np.unique(y_N):
    idx = np.flatnonzero(y_N == c)
    rows.append(rng.choice(idx, max(1, int(round(fraction * len(idx)))), replace=False))
  return np.sort(np.concatenate(rows))


def stratified_halves(y_N: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """A seeded, class-stratified split of rows into two halves ('select', 'report').

  Each class is shuffled and the classes are concatenated; rows then go to the two
  halves in turn, so every class and the total differ by at most one between them.

  Args:
    y_N: (N,) int labels.
    seed: seeds the shuffle.

  Returns:
    (select_rows, report_rows): sorted, disjoint, together all of range(N).
  """
  rng = rng_lib.numpy_stream(seed, 'stratified_halves')
  order = np.concatenate(
    [rng.permutation(np.flatnonzero(y_N == c)) for c in np.unique(y_N)] + [np.zeros(0, np.int64)]
  )
  return np.sort(order[0::2]), np.sort(order[1::2])


def augmentation(
  name: str, real_train, synthetic, val, test, num_classes: int, steps: int, seeds, fractions
) -> dict:
  """Accuracy with a fraction of real train, alone and plus all synthetic people.

  The subsample of each seed is drawn with that seed; the generator saw ALL of
  real train, so 'plus synthetic' can leak the unused part into the model.
  """
  curve = {'fractions': list(fractions), 'real_only': [], 'real_plus_synthetic': []}
  for fraction in fractions:
    alone, plus = [], []
    for seed in seeds:
      rows = stratified_fraction(real_train[1], fraction, seed)
      xr, yr = real_train[0][rows], real_train[1][rows]
      alone.append(
        train_and_test(name, (xr, yr), val, test, num_classes, steps, [seed])['acc']['mean']
      )
      both = (np.concatenate([xr, synthetic[0]]), np.concatenate([yr, synthetic[1]]))
      plus.append(train_and_test(name, both, val, test, num_classes, steps, [seed])['acc']['mean'])
    curve['real_only'].append(_mean_sd(alone))
    curve['real_plus_synthetic'].append(_mean_sd(plus))
  return curve
