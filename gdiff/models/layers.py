"""Building blocks shared by the denoising networks.

Everything here works on channels-last arrays: genes along axis 1, features
along the last axis, (B, L, F). The time input is `t / T` in [0, 1); labels are
int32 in [0, num_classes] where `num_classes` is the null label of
classifier-free guidance, so label tables have `num_classes + 1` rows.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

# Networks see t/T; sinusoidal features use the integer-step scale of DDPM
# (0..1000) so that the frequencies are the familiar ones.
TIME_SCALE = 1000.0


def sinusoidal_embedding(t_B: jax.Array, dim: int, max_period: float = 10_000.0) -> jax.Array:
  """Sinusoidal features of `t_B * TIME_SCALE` (guided-diffusion style), (B, dim)."""
  half = dim // 2
  freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
  args = (t_B.astype(jnp.float32) * TIME_SCALE)[:, None] * freqs[None]
  emb = jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)
  if dim % 2:
    emb = jnp.pad(emb, ((0, 0), (0, 1)))
  return emb


def group_norm(groups: int, channels: int, dtype=jnp.float32, name: str | None = None):
  """GroupNorm whose group count is the largest divisor of `channels` not above `groups`.

  The paper uses 32 groups everywhere; small CPU configs have fewer channels
  than that, so the count is reduced instead of failing.
  """
  return GroupNorm(num_groups=math.gcd(groups, channels), dtype=dtype, name=name)


@jax.custom_vjp
def _materialize_grad(x: jax.Array) -> jax.Array:
  """The identity whose gradient is computed in full before it is used.

  The fused norm's backward is cheap elementwise work; without this barrier
  XLA fuses it across the residual stream into a few huge fusions that
  recompute it many times over (a 10x slower CNN step on CPU).
  """
  return x


def _materialize_fwd(x):
  return x, None


def _materialize_bwd(_, g):
  return (jax.lax.optimization_barrier(g),)


_materialize_grad.defvjp(_materialize_fwd, _materialize_bwd)


class GroupNorm(nn.Module):
  """GroupNorm as one affine map per (sample, channel), optionally followed by FiLM.

  Computes what `flax.linen.GroupNorm` computes (same parameters `scale` and
  `bias`, so checkpoints load either way; statistics over every axis but the
  first and last, in groups of channels, E[x^2] - E[x]^2 in float32), then
  `y * (1 + film_scale) + film_shift` when those are given. Mean, variance,
  the norm's own scale and bias and the FiLM terms are folded into one
  (B, F) multiplier and offset, so the activation is read twice (statistics)
  and written once, instead of once per elementwise step: on CPU, where the
  CNN's norms at 1,024 genes are memory-bound, this made its training step
  faster (docs/benchmarks.md).
  """

  num_groups: int
  epsilon: float = 1e-5
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(
    self,
    x: jax.Array,
    film_scale_BxF: jax.Array | None = None,
    film_shift_BxF: jax.Array | None = None,
  ) -> jax.Array:
    b, f = x.shape[0], x.shape[-1]
    per_group = f // self.num_groups
    gamma_F = self.param('scale', nn.initializers.ones_init(), (f,), jnp.float32)
    beta_F = self.param('bias', nn.initializers.zeros_init(), (f,), jnp.float32)
    axes = tuple(range(1, x.ndim - 1))
    x = _materialize_grad(x)
    xf = x.astype(jnp.float32)
    count = math.prod(x.shape[1:-1]) * per_group
    mean_BxG = xf.sum(axes).reshape(b, self.num_groups, per_group).sum(-1) / count
    meansq_BxG = (xf * xf).sum(axes).reshape(b, self.num_groups, per_group).sum(-1) / count
    rstd_BxG = jax.lax.rsqrt(jnp.maximum(meansq_BxG - mean_BxG * mean_BxG, 0.0) + self.epsilon)
    mult_BxF = jnp.repeat(rstd_BxG, per_group, axis=-1) * gamma_F
    offset_BxF = beta_F - jnp.repeat(mean_BxG, per_group, axis=-1) * mult_BxF
    if film_scale_BxF is not None:
      film = 1.0 + film_scale_BxF.astype(jnp.float32)
      mult_BxF = mult_BxF * film
      offset_BxF = offset_BxF * film + film_shift_BxF.astype(jnp.float32)
    shape = (b,) + (1,) * len(axes) + (f,)
    mult = mult_BxF.reshape(shape).astype(self.dtype)
    offset = offset_BxF.reshape(shape).astype(self.dtype)
    return x.astype(self.dtype) * mult + offset


class Conv1D(nn.Module):
  """'SAME' 1-D convolution over the gene axis, channels last, kernel (K, F_in, F_out).

  XLA's native convolution; on CPU it ran 2-3x faster (forward and backward)
  than the same map written as a matmul on shifted copies (im2col).
  """

  features: int
  kernel_size: int = 3
  zero_init: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_BxLxF: jax.Array) -> jax.Array:
    init = nn.initializers.zeros_init() if self.zero_init else nn.linear.default_kernel_init
    return nn.Conv(
      self.features,
      (self.kernel_size,),
      padding='SAME',
      kernel_init=init,
      dtype=self.dtype,
      name='conv',
    )(x_BxLxF)


class Conditioning(nn.Module):
  """Time + label embedding: MLP(sinusoidal(t)) + Embed(label), (B, dim)."""

  dim: int
  num_classes: int
  freq_dim: int = 64
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, t_B: jax.Array, label_B: jax.Array) -> jax.Array:
    h = sinusoidal_embedding(t_B, self.freq_dim)
    h = nn.Dense(self.dim, dtype=self.dtype, name='time_in')(h)
    h = nn.Dense(self.dim, dtype=self.dtype, name='time_out')(nn.silu(h))
    # +1 row: the null label used by classifier-free guidance.
    return h + nn.Embed(self.num_classes + 1, self.dim, name='label')(label_B).astype(h.dtype)
