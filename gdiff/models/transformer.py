"""Transformer over tokens of `transformer_genes_per_token` consecutive genes.

Each token has its own input and output layer (a (tokens, k*C, d) kernel used
with einsum), since a gene's embedding slots mean different things at every
position. CLS, time and class tokens are prepended; a pre-LayerNorm encoder
of `transformer_layers` blocks follows. G is zero-padded up to a multiple of
the token size internally and cropped back.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gdiff.models import layers
from gdiff.models.spec import ModelConfig, apply_mask


class PerTokenDense(nn.Module):
  """A separate Dense layer for every token position: (B, N, F) -> (B, N, features)."""

  features: int
  zero_init: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_BxNxF):
    n, f = x_BxNxF.shape[1:]
    init = (
      nn.initializers.zeros_init()
      if self.zero_init
      else nn.initializers.variance_scaling(
        1.0, 'fan_in', 'truncated_normal', in_axis=1, out_axis=2
      )
    )
    kernel = self.param('kernel', init, (n, f, self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (n, self.features))
    y = jnp.einsum('bnf,nfd->bnd', x_BxNxF.astype(self.dtype), kernel.astype(self.dtype))
    return y + bias.astype(self.dtype)


class EncoderBlock(nn.Module):
  dim: int
  heads: int
  dropout: float
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, h, train: bool):
    drop = lambda y: nn.Dropout(self.dropout, deterministic=not train)(y) if self.dropout else y
    y = nn.LayerNorm(dtype=self.dtype, name='ln_attn')(h)
    y = nn.MultiHeadDotProductAttention(self.heads, dtype=self.dtype, name='attn')(y, y)
    h = h + drop(y)
    y = nn.LayerNorm(dtype=self.dtype, name='ln_mlp')(h)
    y = nn.gelu(nn.Dense(4 * self.dim, dtype=self.dtype, name='mlp_in')(y))
    return h + drop(nn.Dense(self.dim, dtype=self.dtype, name='mlp_out')(y))


class GeneTransformer(nn.Module):
  """eps(x_t, t/T, label) for x (B, G, C); output zero on padding."""

  config: ModelConfig

  @nn.compact
  def __call__(
    self, x_BxGxC: jax.Array, t_B: jax.Array, label_B: jax.Array, train: bool = False
  ) -> jax.Array:
    mc = self.config
    dt = mc.compute_dtype
    d = mc.transformer_dim
    k = mc.transformer_genes_per_token
    b, g, c = x_BxGxC.shape
    pad = -g % k
    x = jnp.pad(x_BxGxC, ((0, 0), (0, pad), (0, 0))).astype(dt)
    tokens = PerTokenDense(d, dtype=dt, name='tokens_in')(x.reshape(b, (g + pad) // k, k * c))
    cls = self.param('cls', nn.initializers.normal(0.02), (1, 1, d))
    time = nn.Dense(d, dtype=dt, name='time')(layers.sinusoidal_embedding(t_B, d))
    label = nn.Embed(mc.num_classes + 1, d, name='label')(label_B).astype(dt)
    h = jnp.concatenate(
      [jnp.broadcast_to(cls.astype(dt), (b, 1, d)), time[:, None], label[:, None], tokens], axis=1
    )
    for i in range(mc.transformer_layers):
      h = EncoderBlock(d, mc.transformer_heads, mc.dropout, dt, name=f'block_{i}')(h, train)
    h = nn.LayerNorm(dtype=dt, name='ln_out')(h[:, 3:])
    out = PerTokenDense(k * c, zero_init=True, dtype=dt, name='tokens_out')(h)
    out = out.reshape(b, g + pad, c)[:, :g]
    return apply_mask(mc, (out + x[:, :g]).astype(jnp.float32))
