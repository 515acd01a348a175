"""DDPM noise schedules and the forward (noising) process.

Time convention shared by training, sampling and the networks: integer steps
t in {0, ..., T-1}; networks receive `t / T` as a float in [0, 1). Labels are
int32 in [0, num_classes]; the value `num_classes` is the null label that
classifier-free guidance uses for the unconditional prediction.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from gdiff.errors import InputError


@dataclasses.dataclass(frozen=True)
class Schedule:
  """Precomputed DDPM quantities, each (T,) float32."""

  betas: jax.Array
  alphas_cumprod: jax.Array

  @property
  def num_steps(self) -> int:
    return int(self.betas.shape[0])

  @property
  def sqrt_alphas_cumprod(self) -> jax.Array:
    return jnp.sqrt(self.alphas_cumprod)

  @property
  def sqrt_one_minus_alphas_cumprod(self) -> jax.Array:
    return jnp.sqrt(1.0 - self.alphas_cumprod)


jax.tree_util.register_dataclass(Schedule, data_fields=['betas', 'alphas_cumprod'], meta_fields=[])


def _cosine_betas(num_steps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
  """Nichol & Dhariwal (2021): alpha_bar(t) = cos^2(((t/T)+s)/(1+s) * pi/2)."""
  f = lambda t: math.cos((t / num_steps + s) / (1 + s) * math.pi / 2) ** 2
  return np.array([min(1 - f(i + 1) / f(i), max_beta) for i in range(num_steps)], np.float64)


def _linear_betas(num_steps: int) -> np.ndarray:
  """Ho et al. (2020), rescaled so that any T gives the same endpoints."""
  scale = 1000 / num_steps
  return np.linspace(scale * 1e-4, scale * 0.02, num_steps, dtype=np.float64)


SCHEDULES = {'cosine': _cosine_betas, 'linear': _linear_betas}


def check_config(d) -> None:
  """Raises InputError naming the option for bad `diffusion` settings (before any stage)."""
  if d.schedule not in SCHEDULES:
    raise InputError(
      f'config diffusion.schedule={d.schedule!r} is unknown; known: {sorted(SCHEDULES)}'
    )
  if d.prediction not in PREDICTIONS:
    raise InputError(
      f'config diffusion.prediction={d.prediction!r} is unknown; known: {sorted(PREDICTIONS)}'
    )
  if int(d.num_steps) < 1:
    raise InputError(f'config diffusion.num_steps={d.num_steps!r}: must be >= 1')
  if not 0 <= d.label_dropout < 1:
    raise InputError(f'config diffusion.label_dropout={d.label_dropout!r}: must be in [0, 1)')


def make_schedule(name: str, num_steps: int) -> Schedule:
  """Builds a schedule by name from `SCHEDULES`."""
  if name not in SCHEDULES:
    raise ValueError(f'unknown diffusion.schedule {name!r}; known: {sorted(SCHEDULES)}')
  betas = SCHEDULES[name](num_steps)
  alphas_cumprod = np.cumprod(1.0 - betas)
  return Schedule(jnp.asarray(betas, jnp.float32), jnp.asarray(alphas_cumprod, jnp.float32))


def _coefficients(schedule: Schedule, t_B: jax.Array, ndim: int):
  """(sqrt(abar_t), sqrt(1 - abar_t)) of each example, shaped to broadcast over ndim axes."""
  shape = (-1,) + (1,) * (ndim - 1)
  return (
    schedule.sqrt_alphas_cumprod[t_B].reshape(shape),
    schedule.sqrt_one_minus_alphas_cumprod[t_B].reshape(shape),
  )


def q_sample(schedule: Schedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
  """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, with t (B,) int32."""
  a, b = _coefficients(schedule, t, x0.ndim)
  return a * x0 + b * noise


def apply_label_dropout(
  key: jax.Array, label_B: jax.Array, num_classes: int, rate: float
) -> jax.Array:
  """Replaces each label by the null label `num_classes` with probability `rate`.

  Training on null labels is what makes classifier-free guidance work at
  sampling time (the paper's code never did it).
  """
  if rate <= 0.0:
    return label_B
  drop = jax.random.bernoulli(key, rate, label_B.shape)
  return jnp.where(drop, jnp.asarray(num_classes, label_B.dtype), label_B)


def _eps_target(schedule: Schedule, x0, noise, t_B):
  del schedule, x0, t_B
  return noise


def _v_target(schedule: Schedule, x0, noise, t_B):
  a, b = _coefficients(schedule, t_B, x0.ndim)
  return a * noise - b * x0


def _eps_from_eps(schedule: Schedule, out, x_t, t_B):
  del schedule, x_t, t_B
  return out


def _eps_from_v(schedule: Schedule, out, x_t, t_B):
  a, b = _coefficients(schedule, t_B, x_t.ndim)
  return a * out + b * x_t


# What the network predicts (diffusion.prediction): name -> (its training target from
# (schedule, x0, noise, t), the noise eps from (schedule, output, x_t, t)).
# 'eps': the noise (Ho et al. 2020; the paper). 'v': sqrt(abar) eps - sqrt(1 - abar) x0
# (Salimans & Ho 2022): its MSE is the eps-MSE / abar, so the nearly-pure-noise steps,
# where an eps error becomes an x0 error divided by sqrt(abar), are not neglected.
PREDICTIONS = {'eps': (_eps_target, _eps_from_eps), 'v': (_v_target, _eps_from_v)}


def eps_from_output(prediction: str, schedule: Schedule, out, x_t, t_B):
  """The noise eps implied by a network output under `prediction` (t_B int32 steps)."""
  return PREDICTIONS[prediction][1](schedule, out, x_t, t_B)


def eps_loss_per_example(
  apply_fn,
  params,
  schedule: Schedule,
  x0_BxGxC: jax.Array,
  label_B: jax.Array,
  mask_GxC: jax.Array,
  key: jax.Array,
  *,
  num_classes: int,
  label_dropout: float = 0.0,
  train: bool = True,
  t_B: jax.Array | None = None,
  prediction: str = 'eps',
) -> jax.Array:
  """Masked MSE of each example's prediction (eps, or v: `PREDICTIONS`), (B,) float32.

  The data and the noise are zeroed on padding, so x_t (and the x0 estimate
  derived from it) stays exactly 0 there; the squared error is averaged over
  the real entries only.

  Args:
    apply_fn: `apply_fn(params, x_t, t/T, label, train, rngs)` -> eps (B, G, C).
    params: network parameters.
    schedule: the DDPM schedule (T steps).
    x0_BxGxC: clean embeddings.
    label_B: int32 class labels in [0, num_classes).
    mask_GxC: 1 on real entries, 0 on padding.
    key: randomness for t, the noise, label dropout and network dropout.
    num_classes: the null label's id.
    label_dropout: probability of replacing a label by the null label.
    train: passed to the network (dropout).
    t_B: optional fixed integer steps; drawn uniformly from [0, T) when None.
    prediction: what the network predicts, a key of `PREDICTIONS`.

  Returns:
    Per-example mean squared error over real entries.
  """
  t_key, noise_key, drop_key, net_key = jax.random.split(key, 4)
  b = x0_BxGxC.shape[0]
  mask = jnp.asarray(mask_GxC, jnp.float32)
  if t_B is None:
    t_B = jax.random.randint(t_key, (b,), 0, schedule.num_steps)
  noise = jax.random.normal(noise_key, x0_BxGxC.shape, jnp.float32) * mask
  x_t = q_sample(schedule, x0_BxGxC * mask, t_B, noise)
  label_B = apply_label_dropout(drop_key, label_B, num_classes, label_dropout)
  t_frac = t_B.astype(jnp.float32) / schedule.num_steps
  out = apply_fn(params, x_t, t_frac, label_B, train, {'dropout': net_key})
  target = PREDICTIONS[prediction][0](schedule, x0_BxGxC * mask, noise, t_B)
  sq = jnp.square(out.astype(jnp.float32) - target) * mask
  return sq.sum(axis=(1, 2)) / jnp.maximum(mask.sum(), 1.0)


def eps_loss(
  apply_fn,
  params,
  schedule: Schedule,
  x0_BxGxC: jax.Array,
  label_B: jax.Array,
  mask_GxC: jax.Array,
  key: jax.Array,
  **kwargs,
) -> jax.Array:
  """Mean of `eps_loss_per_example` over the batch (= mean over all real entries)."""
  return eps_loss_per_example(
    apply_fn, params, schedule, x0_BxGxC, label_B, mask_GxC, key, **kwargs
  ).mean()
