"""1-D U-Net over the gene axis, in the style of guided diffusion (Dhariwal & Nichol 2021).

C embedding slots are the input channels. Per level: `cnn_num_res_blocks`
ResBlocks (scale-shift conditioned on time + label), self-attention where the
downsampling factor is in `cnn_attention_factors`, and a ResBlock that halves
(down path) or doubles (up path) the gene axis. Paper sizes: base width 64,
multipliers (1,1,1,1,2,2,3,4), 3 blocks per level, attention at 32 and 64:
about 18M parameters, independent of G. G must be divisible by
2**(levels - 1); `model_config` checks it. `cnn_resample='pool'` halves and
doubles the gene axis without a ResBlock (mean of pairs, repeat), as guided
diffusion does with `resblock_updown=False` and no resampling convolution.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from gdiff.models import layers
from gdiff.models.spec import ModelConfig, apply_mask

# How a level halves / doubles the gene axis (`cnn_resample`): in a ResBlock (the paper's),
# or parameter-free (mean of pairs / repeat).
RESAMPLES = ('resblock', 'pool')


def _resample(x_BxLxF, mode):
  if mode == 'down':
    b, length, f = x_BxLxF.shape
    return x_BxLxF.reshape(b, length // 2, 2, f).mean(axis=2)
  if mode == 'up':
    return jnp.repeat(x_BxLxF, 2, axis=1)
  return x_BxLxF


class ResBlock(nn.Module):
  features: int
  norm_groups: int
  dropout: float = 0.0
  resample: str = ''  # '' | 'down' | 'up'
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, emb, train: bool):
    in_features = x.shape[-1]
    h = nn.silu(layers.group_norm(self.norm_groups, in_features, self.dtype, name='norm_in')(x))
    h = _resample(h, self.resample)
    x = _resample(x, self.resample)
    h = layers.Conv1D(self.features, dtype=self.dtype, name='conv_in')(h)
    scale, shift = jnp.split(
      nn.Dense(2 * self.features, dtype=self.dtype, name='emb')(nn.silu(emb)), 2, axis=-1
    )
    # The time/label FiLM is folded into the norm's affine map (one pass).
    h = layers.group_norm(self.norm_groups, self.features, self.dtype, name='norm_out')(
      h, scale, shift
    )
    h = nn.silu(h)
    if self.dropout:
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = layers.Conv1D(self.features, zero_init=True, dtype=self.dtype, name='conv_out')(h)
    if in_features != self.features:
      x = nn.Dense(self.features, dtype=self.dtype, name='skip')(x)
    return x + h


class AttentionBlock(nn.Module):
  num_heads: int
  norm_groups: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    b, length, f = x.shape
    heads = math.gcd(self.num_heads, f)
    h = layers.group_norm(self.norm_groups, f, self.dtype, name='norm')(x)
    qkv = nn.Dense(3 * f, dtype=self.dtype, name='qkv')(h).reshape(b, length, 3, heads, f // heads)
    h = jax.nn.dot_product_attention(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2])
    h = nn.Dense(f, kernel_init=nn.initializers.zeros_init(), dtype=self.dtype, name='proj')(
      h.reshape(b, length, f)
    )
    return x + h


class CNNUNet(nn.Module):
  """eps(x_t, t/T, label) for x (B, G, C); output zero on padding."""

  config: ModelConfig

  @nn.compact
  def __call__(
    self, x_BxGxC: jax.Array, t_B: jax.Array, label_B: jax.Array, train: bool = False
  ) -> jax.Array:
    mc = self.config
    dt = mc.compute_dtype
    base = mc.cnn_base_width
    mults = tuple(mc.cnn_channel_mults)
    attn = set(mc.cnn_attention_factors)
    ng = mc.norm_groups
    res = lambda f, name, resample='': ResBlock(f, ng, mc.dropout, resample, dt, name=name)
    att = lambda name: AttentionBlock(mc.num_heads, ng, dt, name=name)

    emb = layers.Conditioning(4 * base, mc.num_classes, freq_dim=base, dtype=dt, name='cond')(
      t_B, label_B
    )

    def resample(h, name, mode):
      if mc.cnn_resample == 'pool':
        return _resample(h, mode)
      return res(h.shape[-1], name, mode)(h, emb, train)

    x = x_BxGxC.astype(dt)
    h = layers.Conv1D(base * mults[0], dtype=dt, name='conv_in')(x)
    hs = [h]
    ds = 1
    for level, mult in enumerate(mults):
      for i in range(mc.cnn_num_res_blocks):
        h = res(base * mult, f'down_{level}_{i}')(h, emb, train)
        if ds in attn:
          h = att(f'down_{level}_{i}_attn')(h)
        hs.append(h)
      if level != len(mults) - 1:
        h = resample(h, f'down_{level}_resample', 'down')
        hs.append(h)
        ds *= 2
    h = res(h.shape[-1], 'mid_0')(h, emb, train)
    h = att('mid_attn')(h)
    h = res(h.shape[-1], 'mid_1')(h, emb, train)
    for level, mult in reversed(list(enumerate(mults))):
      for i in range(mc.cnn_num_res_blocks + 1):
        h = res(base * mult, f'up_{level}_{i}')(jnp.concatenate([h, hs.pop()], -1), emb, train)
        if ds in attn:
          h = att(f'up_{level}_{i}_attn')(h)
        if level and i == mc.cnn_num_res_blocks:
          h = resample(h, f'up_{level}_resample', 'up')
          ds //= 2
    h = nn.silu(layers.group_norm(ng, h.shape[-1], dt, name='norm_out')(h))
    out = layers.Conv1D(x.shape[-1], zero_init=True, dtype=dt, name='conv_out')(h)
    return apply_mask(mc, (out + x).astype(jnp.float32))
