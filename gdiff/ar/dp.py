"""Differentially private fitting of the autoregressive model (`ar.dp.enabled`): DP-Adam.

The unit of privacy is a training PERSON: a person contributes one genotype
sequence or two haplotypes, and appears in every SNP of every block. So the fit
under DP is not the block-by-block L-BFGS of `gdiff.ar.fit` (each block would be a
separate release of the same person, and full-batch L-BFGS has no accountant);
all SNPs are fit together by DP-SGD (Abadi et al. 2016) with Adam on the noisy
gradient, as the accountant assumes:

1. Poisson sampling: each step takes each training person independently with
   probability q = batch_people / n (a batch of random size).
2. Per-person gradients of the person's summed -log-likelihood over all SNPs,
   `jax.vmap(jax.grad(...))` in a jitted step whose people are sharded over the
   'data' mesh; each person's WHOLE gradient (every SNP's c, e, T, D together) is
   clipped to L2 norm `clip_norm` (`optax.per_example_global_norm_clip`) and
   summed. A batch is processed `microbatch` people at a time (fixed shapes); the
   clipped sums add up, so the batch size needs no cap.
3. Gaussian noise noise_multiplier * clip_norm * N(0, I) is added once to the
   summed clipped gradient (`noisy_gradient`), which is divided by the expected
   batch q * n (a constant, so one person changes it by at most clip_norm / (q n)).
4. The data-free L2 prior (`model.penalty`, over n) is added, then an Adam step:
   post-processing, no further privacy cost.

The privacy loss of `steps` such steps is the self-composition of the
Poisson-subsampled Gaussian mechanism, computed by Google's `dp_accounting`
(PLD accountant by default; `accountant='rdp'`); with `target_epsilon` the noise
multiplier is calibrated to it at `delta` (default 1 / (10 n)). The intercepts
start at 0 (not at train frequencies, which would be an unaccounted release); the
context length is fixed (`ar.dp.context_snps`, no choice on val).

Outside the guarantee (`OUTSIDE`): the SNP list and the QC/MAF filters (computed on
the whole cohort), the class labels' counts used to draw the synthetic labels, and
the split (which people are in train).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time

import dp_accounting
import jax
import jax.numpy as jnp
import numpy as np
import optax
from dp_accounting import pld, rdp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gdiff.ar import model as model_lib

# ar.dp.accountant -> a fresh accountant of dp_accounting.
ACCOUNTANTS = {
  'pld': pld.PLDAccountant,
  'rdp': rdp.RdpAccountant,
}
# What the synthetic cohort reveals about the training people beyond the DP fit.
OUTSIDE = (
  'the SNP list (positions, alleles) and the QC/MAF/HWE filters, computed on the whole cohort',
  'the class counts of train, used to draw the synthetic labels',
  'which people are in the train split (the val/test people are not protected by the fit)',
  'the release gate (sample.gate): which synthetic people it redraws depends on the training '
  'people; set sample.gate.enabled=False for a release covered by epsilon alone',
)


@dataclasses.dataclass(frozen=True)
class DPConfig:
  """The DP-SGD settings of one fit (built from `ar.dp` by `gdiff.ar.stage`)."""

  noise_multiplier: float  # sigma: noise std / clip_norm
  clip_norm: float  # C: L2 bound on one person's whole gradient
  sampling_rate: float  # q: Poisson probability of each person per step
  steps: int
  delta: float
  learning_rate: float = 0.05
  microbatch: int = 32  # people per jitted call (a multiple of the device count)
  accountant: str = 'pld'

  def record(self, epsilon: float) -> dict:
    """The `dp` entry of the train record and the samples manifest."""
    return {
      'epsilon': round(float(epsilon), 4),
      'delta': float(self.delta),
      'noise_multiplier': round(float(self.noise_multiplier), 6),
      'clip_norm': float(self.clip_norm),
      'sampling_rate': round(float(self.sampling_rate), 6),
      'steps': int(self.steps),
      'sampling': 'poisson',
      'unit': 'person',
      'accountant': self.accountant,
      'outside_guarantee': list(OUTSIDE),
    }


# ------------------------------------------------------------------ accounting


def _event(q: float, sigma: float, steps: int) -> dp_accounting.DpEvent:
  return dp_accounting.SelfComposedDpEvent(
    dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
  )


def epsilon(q: float, sigma: float, steps: int, delta: float, accountant: str = 'pld') -> float:
  """The accountant's epsilon of `steps` Poisson-subsampled Gaussian steps at `delta`."""
  if sigma <= 0:
    return math.inf
  acc = ACCOUNTANTS[accountant]()
  acc.compose(_event(q, sigma, steps))
  return float(acc.get_epsilon(delta))


def calibrate(q: float, steps: int, target_epsilon: float, delta: float, accountant='pld') -> float:
  """A noise multiplier (within 1 %) whose epsilon is at most `target_epsilon` (dp_accounting).

  PLD searches with a coarse discretisation (1e-2; 10x faster): its pessimistic estimate
  bounds the default one's, so the epsilon reported (`epsilon`) is at most the target."""
  make = ACCOUNTANTS[accountant]
  if accountant == 'pld':
    make = functools.partial(pld.PLDAccountant, value_discretization_interval=1e-2)
  return float(
    dp_accounting.calibrate_dp_mechanism(
      make,
      lambda sigma: _event(q, sigma, steps),
      float(target_epsilon),
      float(delta),
      bracket_interval=dp_accounting.LowerEndpointAndGuess(0.1, 1.0),
      tol=1e-2,
    )
  )


# ------------------------------------------------------------------ the jitted steps


def person_log_likelihood(cfg, params, x_UxS, label, valid_SxK) -> jax.Array:
  """Summed log p of one person's U sequences (all SNPs) under `params` (no `valid` key)."""
  s, k = valid_SxK.shape
  idx = jnp.arange(s)[:, None] - jnp.arange(1, k + 1)[None]  # (S, k): SNP j - d
  values = jnp.arange(1, cfg.num_states, dtype=jnp.int32)

  def one(x_S):
    x_S = x_S.astype(jnp.int32)
    codes = jnp.where(valid_SxK, x_S[jnp.maximum(idx, 0)], cfg.pad)  # (S, k)
    feats = (codes[..., None] == values).astype(jnp.float32).reshape(s, cfg.features)
    logits = params['c'] + params['e'][:, label]
    logits = logits + jnp.einsum('sf,sfc->sc', feats, params['T'])
    if 'D' in params:
      logits = logits + jnp.einsum('sf,sfc->sc', feats, params['D'][:, label])
    logits = jnp.concatenate([jnp.zeros((s, 1)), logits], -1)
    logp = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(logp, x_S[:, None], -1).sum()

  return jax.vmap(one)(x_UxS).sum()


@functools.partial(jax.jit, static_argnames=('cfg',))
def clipped_sum(params, x_MxUxS, label_M, weight_M, valid_SxK, clip_norm, *, cfg):
  """(sum over people of their gradient of -log-likelihood, each clipped to `clip_norm` in L2
  norm over all parameters; the number clipped). `weight_M` 0 marks padding people."""

  def loss(p, x_UxS, label, w):
    return -w * person_log_likelihood(cfg, p, x_UxS, label, valid_SxK)

  grads = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0, 0))(params, x_MxUxS, label_M, weight_M)
  leaves, treedef = jax.tree.flatten(grads)
  summed, clipped = optax.per_example_global_norm_clip(leaves, clip_norm)
  norms = jax.vmap(optax.tree.norm)(grads)
  real = jnp.sum(weight_M > 0)
  norm_sum = jnp.sum(jnp.where(weight_M > 0, norms, 0.0))
  return jax.tree.unflatten(treedef, summed), clipped, norm_sum, real


def noisy_gradient(summed, key, noise_multiplier, clip_norm, denominator):
  """(summed + noise_multiplier * clip_norm * N(0, I)) / denominator; the leaves' noise comes
  from `jax.random.split(key, #leaves)` in tree-flatten order."""
  leaves, treedef = jax.tree.flatten(summed)
  keys = jax.random.split(key, len(leaves))
  std = noise_multiplier * clip_norm
  noised = [
    (g + std * jax.random.normal(k, g.shape, g.dtype)) / denominator for g, k in zip(leaves, keys)
  ]
  return jax.tree.unflatten(treedef, noised)


@functools.partial(jax.jit, static_argnames=('cfg', 'optimizer'), donate_argnums=(0, 1))
def _update(params, opt_state, summed, key, sigma, clip_norm, denominator, n, *, cfg, optimizer):
  """One DP-Adam step from the batch's clipped sum: noise, the L2 prior, Adam."""
  grad = noisy_gradient(summed, key, sigma, clip_norm, denominator)
  prior = jax.grad(lambda p: model_lib.penalty(cfg, p) / n)(params)
  grad = jax.tree.map(jnp.add, grad, prior)
  updates, opt_state = optimizer.update(grad, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def _zeros_like(tree):
  return jax.tree.map(jnp.zeros_like, tree)


@jax.jit
def _add(a, b):
  return jax.tree.map(jnp.add, a, b)


def init_params(cfg: model_lib.ARConfig, num_snps: int) -> dict:
  """Zero tables and intercepts: nothing read from the training people."""
  s, c = num_snps, cfg.logits
  params = {
    'c': np.zeros((s, c), np.float32),
    'e': np.zeros((s, cfg.num_classes, c), np.float32),
    'T': np.zeros((s, cfg.features, c), np.float32),
  }
  if cfg.per_class:
    params['D'] = np.zeros((s, cfg.num_classes, cfg.features, c), np.float32)
  return params


def fit(
  cfg: model_lib.ARConfig,
  dp: DPConfig,
  x_PxUxS: np.ndarray,
  class_P: np.ndarray,
  chrom_S: np.ndarray,
  *,
  key: jax.Array,
  seed,
  mesh: jax.sharding.Mesh,
) -> tuple[dict, dict]:
  """Fits the model by DP-Adam (see the module docstring).

  Args:
    cfg: the model.
    dp: the DP-SGD settings (noise multiplier already calibrated).
    x_PxUxS: (people, sequences per person, SNPs) int8 training data.
    class_P: (people,) class of each person.
    chrom_S: chromosome of each SNP.
    key: the noise key (step t uses fold_in(key, t)).
    seed: the numpy seed of the Poisson sampling.
    mesh: the people of a microbatch are sharded over its 'data' axis.

  Returns:
    (params as numpy arrays, info: {'dp': the record, 'wall_s', 'mean_batch_people',
    'clipped_fraction', 'mean_grad_norm'}).
  """
  start = time.time()
  n, s = len(x_PxUxS), x_PxUxS.shape[-1]
  devices = mesh.devices.size
  m = -(-max(1, int(dp.microbatch)) // devices) * devices
  valid = jnp.asarray(model_lib.context_valid(chrom_S, cfg.context))
  replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P('data'))
  params = jax.device_put(jax.tree.map(jnp.asarray, init_params(cfg, s)), replicated)
  optimizer = optax.adam(optax.cosine_decay_schedule(float(dp.learning_rate), int(dp.steps)))
  opt_state = optimizer.init(params)
  sampler = np.random.default_rng(seed)
  x_PxUxS = np.asarray(x_PxUxS, np.int8)
  class_P = np.asarray(class_P, np.int32)
  denominator = dp.sampling_rate * n
  batch_total = clipped_total = 0
  norm_total = 0.0
  for step in range(int(dp.steps)):
    chosen = np.flatnonzero(sampler.random(n) < dp.sampling_rate)
    summed = _zeros_like(params)
    for lo in range(0, len(chosen), m):
      rows = chosen[lo : lo + m]
      pad = m - len(rows)
      take = np.concatenate([rows, np.zeros(pad, np.int64)])
      weight = np.concatenate([np.ones(len(rows), np.float32), np.zeros(pad, np.float32)])
      batch = jax.device_put((x_PxUxS[take], class_P[take], weight), sharded)
      part, clipped, norms, _ = clipped_sum(params, *batch, valid, float(dp.clip_norm), cfg=cfg)
      summed = _add(summed, part)
      clipped_total += int(clipped)  # padding people have norm 0: never clipped
      norm_total += float(norms)
    batch_total += len(chosen)
    params, opt_state = _update(
      params,
      opt_state,
      summed,
      jax.random.fold_in(key, step),
      float(dp.noise_multiplier),
      float(dp.clip_norm),
      float(denominator),
      float(n),
      cfg=cfg,
      optimizer=optimizer,
    )
    if step % 50 == 0 or step == dp.steps - 1:
      logging.info('ar dp: step %d / %d (%d people)', step + 1, dp.steps, len(chosen))
  params = {k: np.asarray(v) for k, v in jax.device_get(params).items()}
  eps = epsilon(dp.sampling_rate, dp.noise_multiplier, dp.steps, dp.delta, dp.accountant)
  info = {
    'dp': dp.record(eps),
    'mean_batch_people': round(batch_total / max(int(dp.steps), 1), 2),
    'clipped_fraction': round(clipped_total / max(batch_total, 1), 4),
    'mean_grad_norm': round(norm_total / max(batch_total, 1), 3),
    'wall_s': round(time.time() - start, 3),
  }
  logging.info(
    'ar dp: %d people x %d SNPs, %d steps in %.1f s: epsilon %.3g at delta %.3g '
    '(sigma %.3f, q %.4f, %.0f%% of people clipped)',
    n,
    s,
    dp.steps,
    info['wall_s'],
    eps,
    dp.delta,
    dp.noise_multiplier,
    dp.sampling_rate,
    100 * info['clipped_fraction'],
  )
  return params, info
