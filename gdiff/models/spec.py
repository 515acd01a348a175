"""`ModelConfig`: the frozen, hashable description every network is built from.

Networks never see the ConfigDict. The mask of real embedding entries travels
inside the config as packed bits, so the config stays hashable (a static jit
argument) and small (18 KB for the paper's 18,432 x 8 ALS tensor).
"""

from __future__ import annotations

import dataclasses
import functools

import jax.numpy as jnp
import numpy as np

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Sizes of the denoising networks; see the `model` section of configs/base.py."""

  name: str
  num_groups: int  # G
  slots: int  # C
  num_classes: int  # real classes; label `num_classes` is the null label
  mask_bits: bytes = b''  # np.packbits of the (G, C) mask; empty: all entries real
  mlp_widths: tuple[int, ...] = (1024, 512, 256)
  norm_groups: int = 32
  cnn_base_width: int = 64
  cnn_channel_mults: tuple[int, ...] = (1, 1, 1, 1, 2, 2, 3, 4)
  cnn_num_res_blocks: int = 3
  cnn_attention_factors: tuple[int, ...] = (32, 64)
  cnn_resample: str = 'resblock'  # 'resblock' (the paper's) | 'pool'
  num_heads: int = 4
  gate_hidden: int = 64
  transformer_genes_per_token: int = 16
  transformer_layers: int = 12
  transformer_dim: int = 384
  transformer_heads: int = 6
  dropout: float = 0.0
  dtype: str = 'float32'

  @property
  def compute_dtype(self):
    return DTYPES[self.dtype]

  @property
  def mask_GxC(self) -> np.ndarray:
    """The (G, C) float32 mask of real entries (1) and padding (0)."""
    return _unpack_mask(self.mask_bits, self.num_groups, self.slots)


@functools.lru_cache(maxsize=8)
def _unpack_mask(bits: bytes, num_groups: int, slots: int) -> np.ndarray:
  if not bits:
    return np.ones((num_groups, slots), np.float32)
  flat = np.unpackbits(np.frombuffer(bits, np.uint8), count=num_groups * slots)
  return flat.reshape(num_groups, slots).astype(np.float32)


def pack_mask(mask_GxC) -> bytes:
  """Packs a (G, C) boolean mask for `ModelConfig.mask_bits`."""
  return np.packbits(np.asarray(mask_GxC, bool).reshape(-1)).tobytes()


def apply_mask(mc: ModelConfig, y_BxGxC):
  """Zeros the padding entries of a network output."""
  if not mc.mask_bits:
    return y_BxGxC
  return y_BxGxC * jnp.asarray(mc.mask_GxC, y_BxGxC.dtype)
