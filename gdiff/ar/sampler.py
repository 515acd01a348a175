"""Sampling the local autoregressive model: one pass over the SNPs in genome order.

`sample(params, labels_B, ids_B, key)` draws B sequences: at SNP j each sequence's
state is drawn from softmax(logits_j / temperature) given its last k states (a
`lax.scan` over the SNPs carrying them). The randomness of sequence i comes from
`fold_in(key, ids[i])` alone (one uniform per SNP, inverse-CDF draws), so a
synthetic person does not depend on the batch it was drawn in or on the device
count. Batches shard over the 'data' mesh axis; the parameters are replicated.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _uniforms(key: jax.Array, ids_B: jax.Array, num_snps: int) -> jax.Array:
  keys = jax.vmap(jax.random.fold_in, (None, 0))(key, ids_B)
  return jax.vmap(lambda k: jax.random.uniform(k, (num_snps,)))(keys)  # (B, S)


# (B, S) uniforms of whole-genome sequences: a segment's draws use its slice of them.
uniforms = jax.jit(_uniforms, static_argnames=('num_snps',))


@functools.partial(jax.jit, static_argnames=('temperature',))
def sample(
  params: dict,
  labels_B: jax.Array,
  ids_B: jax.Array,
  key: jax.Array,
  temperature: float = 1.0,
  z_BxP: jax.Array | None = None,
  u_BxS: jax.Array | None = None,
  start_BxK: jax.Array | None = None,
) -> jax.Array:
  """Draws one sequence per row.

  Args:
    params: the model (`gdiff.ar.model`), including `valid`.
    labels_B: (B,) int32 class of each sequence's person.
    ids_B: (B,) int32 sequence ids (distinct ids give independent sequences).
    key: the sampling key.
    temperature: divides the logits (1: the fitted model).
    z_BxP: each sequence's ancestry code (required when `params` has A; `gdiff.ar.ancestry`).
    u_BxS: the uniforms to draw from (default: `uniforms(key, ids_B, S)`); a segment of the
      genome passes its slice of the whole genome's (`gdiff.ar.segments`).
    start_BxK: the k states before the first SNP, most recent first (default: none, PAD);
      a segment passes the states the previous one ended with.

  Returns:
    (B, S) int8 states.
  """
  valid = params['valid']
  s, k = valid.shape
  b = labels_B.shape[0]
  num_logits = params['c'].shape[-1]
  pad = num_logits + 1
  u_SxB = (_uniforms(key, ids_B, s) if u_BxS is None else u_BxS).T
  base_SxBxC = params['c'][:, None] + params['e'][:, labels_B]
  if 'A' in params:
    base_SxBxC = base_SxBxC + jnp.einsum('bp,spc->sbc', z_BxP, params['A'])
  lags = jnp.arange(k)

  def by_value(table):  # (..., F, C) -> (..., k, num_states + 1, C): rows v = 0 and PAD are 0
    t = table.reshape(*table.shape[:-2], k, num_logits, num_logits)
    zero = jnp.zeros(t.shape[:-2] + (1, num_logits), t.dtype)
    return jnp.concatenate([zero, t, zero], -2)

  shared = by_value(params['T'])  # (S, k, V + 1, C)
  has_class = 'D' in params
  per_class = by_value(params['D']) if has_class else jnp.zeros((s, 1, 1, 1, num_logits))

  def step(last_BxK, inputs):
    base_BxC, t_KxVxC, d_KxKxVxC, valid_K, u_B = inputs
    prev = jnp.where(valid_K[None], last_BxK, pad)
    logits = base_BxC + t_KxVxC[lags[None], prev].sum(1)
    if has_class:
      logits = logits + d_KxKxVxC[labels_B[:, None], lags[None], prev].sum(1)
    logits = jnp.concatenate([jnp.zeros((b, 1), logits.dtype), logits], -1)
    cdf = jnp.cumsum(jax.nn.softmax(logits / temperature, -1), -1)
    state = jnp.minimum(jnp.sum(u_B[:, None] > cdf, -1), num_logits).astype(jnp.int32)
    return jnp.concatenate([state[:, None], last_BxK[:, :-1]], 1), state.astype(jnp.int8)

  start = jnp.full((b, k), pad, jnp.int32) if start_BxK is None else start_BxK.astype(jnp.int32)
  _, states_SxB = jax.lax.scan(step, start, (base_SxBxC, shared, per_class, valid, u_SxB))
  return states_SxB.T


def haplotype_pairs(labels_N: jax.Array, ids_N: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Sequence labels and ids for N people drawn as two haplotypes each (rows 2i, 2i+1)."""
  return jnp.repeat(labels_N, 2), jnp.stack([2 * ids_N, 2 * ids_N + 1], 1).reshape(-1)


def num_states(params: dict) -> int:
  """States of one sequence element of a fitted model (2: haplotypes, 3: genotypes)."""
  return int(params['c'].shape[-1]) + 1
