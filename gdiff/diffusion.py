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


jax.tree_util.register_dataclass(Schedule, data_fields=['betas', 'alphas_cumprod'],
                                 meta_fields=[])


def _cosine_betas(num_steps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
  """Nichol & Dhariwal (2021): alpha_bar(t) = cos^2(((t/T)+s)/(1+s) * pi/2)."""
  f = lambda t: math.cos((t / num_steps + s) / (1 + s) * math.pi / 2) ** 2
  return np.array([min(1 - f(i + 1) / f(i), max_beta) for i in range(num_steps)], np.float64)


def _linear_betas(num_steps: int) -> np.ndarray:
  """Ho et al. (2020), rescaled so that any T gives the same endpoints."""
  scale = 1000 / num_steps
  return np.linspace(scale * 1e-4, scale * 0.02, num_steps, dtype=np.float64)


SCHEDULES = {'cosine': _cosine_betas, 'linear': _linear_betas}


def make_schedule(name: str, num_steps: int) -> Schedule:
  """Builds a schedule by name from `SCHEDULES`."""
  if name not in SCHEDULES:
    raise ValueError(f'unknown diffusion.schedule {name!r}; known: {sorted(SCHEDULES)}')
  betas = SCHEDULES[name](num_steps)
  alphas_cumprod = np.cumprod(1.0 - betas)
  return Schedule(jnp.asarray(betas, jnp.float32), jnp.asarray(alphas_cumprod, jnp.float32))


def q_sample(schedule: Schedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
  """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, with t (B,) int32."""
  shape = (-1,) + (1,) * (x0.ndim - 1)
  a = schedule.sqrt_alphas_cumprod[t].reshape(shape)
  b = schedule.sqrt_one_minus_alphas_cumprod[t].reshape(shape)
  return a * x0 + b * noise
