"""The denoising networks of the paper, picked by name from `MODELS`.

Every network maps x_t (B, G, C), t/T (B,) float32 and a label (B,) int32 in
[0, num_classes] (num_classes = null label) to the predicted noise (B, G, C),
adds its input back onto its output, and is zero on the padding entries of the
embedding mask. Networks take a frozen `ModelConfig`, built once from the
ConfigDict by `model_config` (`load_model_config`: for a fitted embedding).
"""

from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gdiff import workdir as wd
from gdiff.errors import InputError
from gdiff.models import blend, cnn, mlp, transformer
from gdiff.models.spec import ModelConfig, pack_mask

MODELS = {
  'mlp': mlp.MLPUNet,
  'cnn': cnn.CNNUNet,
  'mlp_cnn': blend.MLPCNNBlend,
  'transformer': transformer.GeneTransformer,
}

__all__ = [
  'MODELS',
  'ModelConfig',
  'abstract_params',
  'build',
  'check_config',
  'count_params',
  'init_params',
  'load_model_config',
  'model_config',
]


def check_config(m: ml_collections.ConfigDict) -> None:
  """Raises InputError naming the option for bad `model` settings (before any stage)."""
  if m.name not in MODELS:
    raise InputError(f'config model.name={m.name!r} is unknown; known: {sorted(MODELS)}')
  if m.dtype not in ('float32', 'bfloat16'):
    raise InputError(f"config model.dtype={m.dtype!r}: use 'float32' or 'bfloat16'")
  if not 0 <= m.dropout < 1:
    raise InputError(f'config model.dropout={m.dropout!r}: must be in [0, 1)')
  if m.cnn_resample not in cnn.RESAMPLES:
    raise InputError(f'config model.cnn_resample={m.cnn_resample!r}: use one of {cnn.RESAMPLES}')


def model_config(
  config: ml_collections.ConfigDict, num_groups: int, slots: int, num_classes: int, mask_GxC=None
) -> ModelConfig:
  """Builds the frozen network description from `config.model`.

  Args:
    config: the full gdiff config (reads `config.model`).
    num_groups: G, the (padded) number of gene groups.
    slots: C, embedding slots per group.
    num_classes: number of real classes; label `num_classes` is the null label.
    mask_GxC: optional (G, C) bool mask of real entries; outputs are zeroed
      elsewhere. None: every entry is real.

  Returns:
    A hashable `ModelConfig`.

  Raises:
    InputError: unknown `model.name`, or G incompatible with the CNN depth.
  """
  m = config.model
  check_config(m)
  if m.name in ('cnn', 'mlp_cnn'):
    factor = 2 ** (len(m.cnn_channel_mults) - 1)
    if num_groups % factor:
      raise InputError(
        f'the CNN U-Net with {len(m.cnn_channel_mults)} levels (model.cnn_channel_mults) '
        f'needs the group count divisible by {factor}, got {num_groups}; set '
        f'embedding.group_multiple to a multiple of {factor} and rerun prepare'
      )
  if mask_GxC is not None and np.shape(mask_GxC) != (num_groups, slots):
    raise InputError(
      f'embedding mask has shape {np.shape(mask_GxC)}, expected ({num_groups}, {slots})'
    )
  return ModelConfig(
    name=m.name,
    num_groups=int(num_groups),
    slots=int(slots),
    num_classes=int(num_classes),
    mask_bits=b'' if mask_GxC is None else pack_mask(mask_GxC),
    mlp_widths=tuple(m.mlp_widths),
    norm_groups=m.norm_groups,
    cnn_base_width=m.cnn_base_width,
    cnn_channel_mults=tuple(m.cnn_channel_mults),
    cnn_num_res_blocks=m.cnn_num_res_blocks,
    cnn_attention_factors=tuple(m.cnn_attention_factors),
    cnn_resample=m.cnn_resample,
    num_heads=m.num_heads,
    gate_hidden=m.gate_hidden,
    transformer_genes_per_token=m.transformer_genes_per_token,
    transformer_layers=m.transformer_layers,
    transformer_dim=m.transformer_dim,
    transformer_heads=m.transformer_heads,
    dropout=float(m.dropout),
    dtype=m.dtype,
  )


def load_model_config(config: ml_collections.ConfigDict, emb_dir: str) -> ModelConfig:
  """The `ModelConfig` for the embedding in `emb_dir` (its manifest and mask).

  Raises:
    InputError: the embedding is missing (prepare has not run), or as `model_config`.
  """
  manifest_path = os.path.join(emb_dir, wd.EMBEDDING_MANIFEST_FILE)
  mask_path = os.path.join(emb_dir, wd.MASK_FILE)
  for path in (manifest_path, mask_path):
    if not os.path.exists(path):
      raise InputError(f'{path} is missing; run --mode=prepare first')
  with open(manifest_path) as f:
    manifest = json.load(f)
  return model_config(
    config,
    manifest['num_groups'],
    manifest['slots'],
    len(manifest['classes']),
    mask_GxC=np.load(mask_path),
  )


def build(mc: ModelConfig):
  """The flax module named by `mc.name`."""
  return MODELS[mc.name](mc)


def dummy_inputs(mc: ModelConfig, batch_size: int = 1):
  """Zero inputs of the right shapes and dtypes, for `init`."""
  return (
    jnp.zeros((batch_size, mc.num_groups, mc.slots), jnp.float32),
    jnp.zeros((batch_size,), jnp.float32),
    jnp.zeros((batch_size,), jnp.int32),
  )


def init_params(mc: ModelConfig, key: jax.Array):
  """Initial parameters of `build(mc)`."""
  return build(mc).init(key, *dummy_inputs(mc), train=False)['params']


def abstract_params(mc: ModelConfig, sharding: jax.sharding.Sharding | None = None):
  """The parameters' shapes and dtypes (`jax.ShapeDtypeStruct`s, nothing materialised).

  Args:
    mc: the network.
    sharding: given to every leaf, e.g. replicated on a mesh to restore a checkpoint into.
  """
  shapes = jax.eval_shape(functools.partial(init_params, mc), jax.random.key(0))
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def count_params(mc: ModelConfig) -> int:
  """Parameter count via `jax.eval_shape` (nothing is materialised)."""
  return int(sum(np.prod(s.shape) for s in jax.tree.leaves(abstract_params(mc))))
