"""The paper's best network: a time-gated blend of the MLP and CNN U-Nets.

eps = (1 - lambda(t)) * eps_MLP + lambda(t) * eps_CNN with
lambda(t) = sigmoid(MLP(t/T)), so the model can rely on the global MLP at some
noise levels and on the local CNN at others.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gdiff.models import cnn, mlp
from gdiff.models.spec import ModelConfig


class MLPCNNBlend(nn.Module):
  """eps(x_t, t/T, label) for x (B, G, C); output zero on padding."""

  config: ModelConfig

  @nn.compact
  def __call__(
    self, x_BxGxC: jax.Array, t_B: jax.Array, label_B: jax.Array, train: bool = False
  ) -> jax.Array:
    eps_mlp = mlp.MLPUNet(self.config, name='mlp')(x_BxGxC, t_B, label_B, train)
    eps_cnn = cnn.CNNUNet(self.config, name='cnn')(x_BxGxC, t_B, label_B, train)
    g = nn.silu(nn.Dense(self.config.gate_hidden, name='gate_in')(t_B[:, None]))
    lam = jax.nn.sigmoid(nn.Dense(1, name='gate_out')(g))[:, :, None]  # (B, 1, 1)
    return ((1 - lam) * eps_mlp + lam * eps_cnn).astype(jnp.float32)
