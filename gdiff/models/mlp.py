"""The paper's MLP U-Net over the flattened (G*C) embedding.

Down blocks (1024, 512), a 256-wide bottleneck and up blocks (512, 1024) with
skip connections, each Linear + GroupNorm + SiLU; the up blocks are modulated
by the time/label embedding (scale and shift). The first and last layers
(G*C x 1024) hold almost all parameters: about 310M at the ALS shape.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gdiff.models import layers
from gdiff.models.spec import ModelConfig, apply_mask


class DownBlock(nn.Module):
  width: int
  norm_groups: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, h):
    dense = lambda name: nn.Dense(self.width, dtype=self.dtype, name=name)
    h = nn.silu(dense('in')(h))
    skip = nn.silu(dense('skip')(h))
    norm = layers.group_norm(self.norm_groups, self.width, self.dtype, name='norm')
    return h + nn.silu(dense('out')(norm(h))), skip


class UpBlock(nn.Module):
  width: int
  norm_groups: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, h, skip, cond):
    dense = lambda name: nn.Dense(self.width, dtype=self.dtype, name=name)
    h = nn.silu(dense('in')(h))
    residual = h
    h = layers.group_norm(self.norm_groups, self.width, self.dtype, name='norm')(h)
    h = nn.silu(dense('merge')(jnp.concatenate([h, skip], axis=-1)))
    scale, shift = jnp.split(
      nn.Dense(2 * self.width, dtype=self.dtype, name='cond')(nn.silu(cond)), 2, axis=-1
    )
    h = h * (1 + scale) + shift
    return nn.silu(dense('out')(h)) + residual


class MLPUNet(nn.Module):
  """eps(x_t, t/T, label) for x (B, G, C); output zero on padding."""

  config: ModelConfig

  @nn.compact
  def __call__(
    self, x_BxGxC: jax.Array, t_B: jax.Array, label_B: jax.Array, train: bool = False
  ) -> jax.Array:
    mc = self.config
    dt = mc.compute_dtype
    widths = tuple(mc.mlp_widths)
    b = x_BxGxC.shape[0]
    x = x_BxGxC.reshape(b, -1).astype(dt)
    cond = layers.Conditioning(widths[-1], mc.num_classes, dtype=dt, name='cond')(t_B, label_B)
    h = x
    skips = []
    for i, w in enumerate(widths[:-1]):
      h, skip = DownBlock(w, mc.norm_groups, dt, name=f'down_{i}')(h)
      skips.append(skip)
    h = nn.Dense(widths[-1], dtype=dt, name='mid_in')(h)
    h = nn.silu(layers.group_norm(mc.norm_groups, widths[-1], dt, name='mid_norm')(h))
    h = nn.silu(nn.Dense(widths[-1], dtype=dt, name='mid_out')(h))
    for i, w in enumerate(reversed(widths[:-1])):
      h = UpBlock(w, mc.norm_groups, dt, name=f'up_{i}')(h, skips.pop(), cond)
      h = nn.Dropout(mc.dropout, deterministic=not train)(h) if mc.dropout else h
    h = nn.silu(layers.group_norm(mc.norm_groups, widths[0], dt, name='out_norm')(h))
    # Zero-initialised: the network starts as the identity, a good eps guess at high noise.
    out = nn.Dense(x.shape[-1], dtype=dt, kernel_init=nn.initializers.zeros_init(), name='out')(h)
    eps = (out + x).astype(jnp.float32).reshape(x_BxGxC.shape)
    return apply_mask(mc, eps)
