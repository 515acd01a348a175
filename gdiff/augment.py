"""Recombination augmentation: training people re-assembled from segments of two people.

A window's embedding is a function of that window's SNPs alone, so swapping
whole groups between two people's embeddings gives exactly the embedding of a
genotype mosaic that switches person at group boundaries, like the in-silico
recombinants of resampling simulators (HAPGEN and kin). Drawn afresh every
step, these mosaics keep each class's allele frequencies, the LD inside a
segment and the population structure (partners share the class), while no
training person is ever shown whole again: the network sees n^2 x (switch
points) people instead of n, which is what it would otherwise memorise.

`recombine` runs inside the jitted train step on the global batch: partners
are drawn from the batch (a gather across the 'data' axis under sharding), so
its cost does not grow with the cohort.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gdiff.errors import InputError


def check_config(t) -> None:
  """Raises InputError naming the option for bad recombination settings (`train.recombine_*`)."""
  if t.recombine_segment_groups < 0 or (
    t.recombine_segment_groups and t.recombine_segment_groups < 1
  ):
    raise InputError(
      f'config train.recombine_segment_groups={t.recombine_segment_groups!r}: '
      'must be 0 (off) or >= 1 (mean segment length in groups)'
    )
  if not 0 <= t.recombine_prob <= 1:
    raise InputError(f'config train.recombine_prob={t.recombine_prob!r}: must be in [0, 1]')


def recombine(
  key: jax.Array, x_BxGxC: jax.Array, label_B: jax.Array, segment_groups: float, prob: float = 1.0
) -> jax.Array:
  """Replaces each example, with probability `prob`, by a two-person mosaic.

  The partner is a random other example of the batch with the same label (the
  example itself when it has none). Along the groups, the source switches
  between the example and its partner with probability 1 / `segment_groups`
  at each group boundary (segments of geometric length, mean `segment_groups`),
  starting from either one with probability 1/2.

  Args:
    key: randomness of the partners, switch points and which examples change.
    x_BxGxC: embeddings (padding entries are zero for everyone and stay zero).
    label_B: int32 class labels.
    segment_groups: mean segment length in groups (> 0).
    prob: probability that an example is replaced by its mosaic.

  Returns:
    (B, G, C) array of the same dtype.
  """
  b, g = x_BxGxC.shape[:2]
  partner_key, switch_key, start_key, use_key = jax.random.split(key, 4)
  eligible_BxB = (label_B[:, None] == label_B[None, :]) & ~jnp.eye(b, dtype=bool)
  score_BxB = jnp.where(eligible_BxB, jax.random.uniform(partner_key, (b, b)), -1.0)
  partner_B = jnp.where(eligible_BxB.any(axis=1), jnp.argmax(score_BxB, axis=1), jnp.arange(b))
  switch_BxG = jax.random.bernoulli(switch_key, 1.0 / segment_groups, (b, g))
  start_B = jax.random.bernoulli(start_key, 0.5, (b,))
  from_partner_BxG = (jnp.cumsum(switch_BxG, axis=1) + start_B[:, None]) % 2 == 1
  from_partner_BxG &= jax.random.bernoulli(use_key, prob, (b,))[:, None]
  return jnp.where(from_partner_BxG[..., None], x_BxGxC[partner_B], x_BxGxC)
