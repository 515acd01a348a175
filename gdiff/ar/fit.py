"""Fitting the local autoregressive model (`gdiff.ar.model`), block by block of SNPs.

Each SNP's regression is independent of every other SNP's, so the SNPs are cut
into blocks of `block_snps` and each block is fit alone, by a solver from SOLVERS:
'lbfgs' (optax's L-BFGS on the block's mean objective, until its gradient norm falls
below `tol` or `max_iter` iterations; the default, whose 100 iterations stop short of the
optimum, which regularises) or 'newton' (`gdiff.ar.newton`: per-SNP Newton steps to the
penalised optimum, about a dozen, 1.2x faster on ALS; docs/decisions.md#ar-solver).
Memory is O(sequences x block_snps x k) whatever the number of SNPs. Blocks are fit
`devices` at a time, one per device of the 'data' mesh (each device runs its own blocks
under shard_map), so a GPU/TPU host fits as many blocks at once as it has chips.

The objective of a SNP is -log p(x_j | context) summed over the training sequences plus
the L2 penalties: a MAP fit whose prior weighs less as the cohort grows, so the same
config behaves on 300 people and on 5,000 (no step count, no epochs).
"""

from __future__ import annotations

import functools
import logging
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gdiff import distributed
from gdiff.ar import model as model_lib
from gdiff.ar import newton


def _lbfgs(fun, init, max_iter: int, tol: float):
  """Minimises `fun` from `init` (optax's L-BFGS with its zoom line search)."""
  opt = optax.lbfgs()
  value_and_grad = optax.value_and_grad_from_state(fun)

  def step(carry):
    params, state = carry
    value, grad = value_and_grad(params, state=state)
    updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=fun)
    return optax.apply_updates(params, updates), state

  def going(carry):
    _, state = carry
    count = optax.tree_utils.tree_get(state, 'count')
    grad = optax.tree_utils.tree_get(state, 'grad')
    return (count == 0) | ((count < max_iter) & (optax.tree_utils.tree_norm(grad) >= tol))

  params, state = jax.lax.while_loop(going, step, (init, opt.init(init)))
  return params, optax.tree_utils.tree_get(state, 'count')


def _solve_lbfgs(cfg, params_b, feats, x_b, weight_b, z, class_rows, max_iter, tol):
  """L-BFGS on the block's mean objective (centred indicators); tol bounds its gradient norm."""
  # Centred indicators: the intercepts no longer trade off against the tables, which
  # L-BFGS would otherwise crawl along; the fitted logits are the same.
  mean_BxF = feats.mean(1)
  centred = feats - mean_BxF[:, None]
  scale = x_b.shape[0] * jnp.maximum(weight_b.sum(), 1.0)

  def objective(p):
    logits = model_lib.block_logits(p, centred, class_rows, z)
    return (model_lib.penalty(cfg, p) - model_lib.log_likelihood(logits, x_b, weight_b)) / scale

  fitted, count = _lbfgs(objective, params_b, max_iter, tol)
  # The same logits on uncentred indicators: fold the means into the intercepts.
  fitted = dict(fitted)
  fitted['c'] = fitted['c'] - jnp.einsum('bf,bfc->bc', mean_BxF, fitted['T'])
  if 'D' in fitted:
    fitted['e'] = fitted['e'] - jnp.einsum('bf,bkfc->bkc', mean_BxF, fitted['D'])
  return fitted, count


def _solve_newton(cfg, params_b, feats, x_b, weight_b, z, class_rows, max_iter, tol):
  """Newton's method per SNP (`gdiff.ar.newton`); tol bounds each SNP's decrement per sequence."""
  b, n, _ = feats.shape
  ones = jnp.ones((b, n, 1), feats.dtype)
  z = jnp.broadcast_to(z, (b,) + z.shape)
  if cfg.per_class:
    v, s = jnp.concatenate([ones, feats], -1), z
  else:
    v, s = ones, jnp.concatenate([feats, z], -1)
  theta, sigma = newton.pack(params_b)
  theta, sigma, count = newton.minimise(
    theta,
    sigma,
    v,
    s,
    x_b,
    weight_b,
    class_rows,
    cfg.num_states,
    cfg.l2_shared,
    cfg.l2_class,
    max_iter,
    tol,
  )
  return newton.unpack(theta, sigma, params_b, cfg.l2_shared, cfg.l2_class), count


# ar.solver -> fit of one block: (cfg, params, indicators (B, N, F), targets (N, B), SNP
# weights (B,), ancestry codes (N, P), class_rows, max_iter, tol) -> (params, iterations).
SOLVERS = {'newton': _solve_newton, 'lbfgs': _solve_lbfgs}


@functools.partial(jax.jit, static_argnames=('cfg', 'class_rows', 'max_iter', 'solver', 'mesh'))
def _fit_blocks(params, codes, x, weight, z, *, cfg, class_rows, max_iter, tol, solver, mesh):
  """Fits a stack of blocks (leading axis, sharded over `mesh`; `z`, the sequences' ancestry
  codes, is replicated); returns (params, iterations per block). Each device runs its own
  blocks' solver loops (shard_map): blocks share nothing, so no collective sits in a loop."""
  solve = SOLVERS[solver]

  def local(params, codes, x, weight, z):
    # One block per device (`_device_groups`): the solver runs on it unbatched. Under vmap
    # the solvers' lax.cond branches (optax's line search) would become selects that
    # evaluate the objective on both sides, 3 evaluations per L-BFGS iteration instead of 1.
    if codes.shape[0] != 1:
      raise ValueError(f'{codes.shape[0]} blocks on one device; _device_groups places one')
    feats = model_lib.indicators(cfg, codes[0])  # (B, N, F)
    first = jax.tree.map(lambda a: a[0], params)
    fitted, count = solve(cfg, first, feats, x[0], weight[0], z, class_rows, max_iter, tol)
    return jax.tree.map(lambda a: a[None], (fitted, count))

  blocks = P('data')
  return jax.shard_map(
    local,
    mesh=mesh,
    in_specs=(blocks, blocks, blocks, blocks, P()),
    out_specs=blocks,
    check_vma=False,  # the solvers' loop carries start replicated (counters, flags)
  )(params, codes, x, weight, z)


@functools.partial(jax.jit, static_argnames=('cfg', 'class_rows'))
def _block_log_likelihood(params, codes, x, weight, z, *, cfg, class_rows):
  """Summed log-likelihood of each block's (weighted) SNPs, vmapped over the stacked blocks."""

  def one(params_b, codes_b, x_b, weight_b):
    feats = model_lib.indicators(cfg, codes_b)
    logits = model_lib.block_logits(params_b, feats, class_rows, z)
    return model_lib.log_likelihood(logits, x_b, weight_b)

  return jax.vmap(one)(params, codes, x, weight)


def class_order(class_N: np.ndarray, num_classes: int) -> tuple[np.ndarray, tuple]:
  """Rows sorted by class (stable) and the (start, stop) rows of each class."""
  order = np.argsort(class_N, kind='stable')
  counts = np.bincount(class_N, minlength=num_classes)
  stops = np.cumsum(counts)
  return order, tuple((int(a), int(b)) for a, b in zip(stops - counts, stops))


def _stacked_blocks(cfg, x_NxS, valid_SxK, starts, block):
  """Codes, targets and SNP weights of the blocks starting at `starts`, padded to `block`."""
  s = x_NxS.shape[1]
  codes, targets, weights = [], [], []
  for lo in starts:
    hi = min(lo + block, s)
    c = model_lib.context_codes(x_NxS, valid_SxK, lo, hi, cfg.pad)
    t = x_NxS[:, lo:hi]
    w = np.ones(hi - lo, np.float32)
    if hi - lo < block:  # the last block: padded with SNPs of weight 0
      extra = block - (hi - lo)
      c = np.concatenate([c, np.full((c.shape[0], extra, c.shape[2]), cfg.pad, np.int8)], 1)
      t = np.concatenate([t, np.zeros((t.shape[0], extra), t.dtype)], 1)
      w = np.concatenate([w, np.zeros(extra, np.float32)])
    codes.append(c)
    targets.append(t)
    weights.append(w)
  return np.stack(codes), np.stack(targets).astype(np.int32), np.stack(weights)


def _param_blocks(flat: dict, starts, block):
  """The per-SNP parameters of each block, stacked (padded SNPs: zeros)."""
  out = {}
  for name, value in flat.items():
    parts = []
    for lo in starts:
      part = value[lo : lo + block]
      if len(part) < block:
        part = np.concatenate([part, np.zeros((block - len(part),) + part.shape[1:], part.dtype)])
      parts.append(part)
    out[name] = np.stack(parts)
  return out


def _device_groups(cfg, x_NxS, class_N, chrom_S, block_snps, mesh, params, z_NxP=None):
  """Yields (starts of the group's real blocks, (params, codes, targets, weights, z) placed on
  `mesh`), one block per device; the last group repeats its last block (discarded by callers).
  The sequences are sorted by class (`class_order`): the jitted steps take its `class_rows`.
  z: the sequences' ancestry codes (None: (N, 0)), replicated."""
  x_NxS = np.asarray(x_NxS, np.int8)
  s = x_NxS.shape[1]
  devices = mesh.devices.size
  order, _ = class_order(np.asarray(class_N), cfg.num_classes)
  x_sorted = x_NxS[order]
  z_NxP = np.zeros((len(x_NxS), 0), np.float32) if z_NxP is None else np.asarray(z_NxP)
  if z_NxP.shape != (len(x_NxS), cfg.ancestry):
    raise ValueError(f'ancestry codes {z_NxP.shape}, expected {(len(x_NxS), cfg.ancestry)}')
  z_sorted = jax.device_put(z_NxP[order].astype(np.float32), NamedSharding(mesh, P()))
  valid = model_lib.context_valid(chrom_S, cfg.context)
  block = max(1, min(int(block_snps), s))
  starts = list(range(0, s, block))
  sharding = NamedSharding(mesh, P('data'))
  for group in range(0, len(starts), devices):
    real = starts[group : group + devices]
    padded = real + real[-1:] * (devices - len(real))
    codes, targets, weights = _stacked_blocks(cfg, x_sorted, valid, padded, block)
    stacked = (_param_blocks(params, padded, block), codes, targets, weights)
    yield real, (*jax.device_put(stacked, sharding), z_sorted)


def fit(
  cfg: model_lib.ARConfig,
  x_NxS: np.ndarray,
  class_N: np.ndarray,
  chrom_S: np.ndarray,
  *,
  block_snps: int = 256,
  max_iter: int = 100,
  tol: float = 1e-5,
  solver: str = 'lbfgs',
  init: dict | None = None,
  val: tuple[np.ndarray, ...] | None = None,
  mesh: jax.sharding.Mesh | None = None,
  z_NxP: np.ndarray | None = None,
) -> tuple[dict, dict]:
  """Fits the model on training sequences.

  Args:
    cfg: the model.
    x_NxS: (N, S) int8 training sequences (haplotypes or genotypes).
    class_N: (N,) class of each sequence's person.
    chrom_S: chromosome of each SNP (contexts stop at chromosome ends).
    block_snps: SNPs per block.
    max_iter: iterations (Newton or L-BFGS steps) at most per block.
    tol: convergence of a block; newton: every SNP's Newton decrement per sequence below
      this; lbfgs: the gradient norm of the block's mean objective below this.
    solver: a key of SOLVERS.
    init: parameters to start from instead of zero tables, e.g. the fit of a shorter
      context (the indicators are lag-major, so its tables are the first rows of these).
    val: (x_MxS, class_M[, z_MxP]) validation sequences, scored with the fitted model.
    mesh: blocks are fit one per device of this mesh (default: all devices).
    z_NxP: each training sequence's ancestry code (`cfg.ancestry` columns; None when 0).

  Returns:
    (params as numpy arrays, info: {'val_log_likelihood': mean per sequence (if val),
    'iterations_max', 'iterations_mean', 'wall_s'}).
  """
  start = time.time()
  x_NxS = np.asarray(x_NxS, np.int8)
  s = x_NxS.shape[1]
  mesh = distributed.make_mesh() if mesh is None else mesh
  _, class_rows = class_order(np.asarray(class_N), cfg.num_classes)
  flat = model_lib.init_params(cfg, x_NxS)
  if init is not None:  # a fit of a shorter context: its tables padded with the new lags
    for name, value in init.items():
      pad = [(0, a - b) for a, b in zip(flat[name].shape, np.shape(value))]
      flat[name] = np.pad(np.asarray(value, np.float32), pad)
  block = max(1, min(int(block_snps), s))
  fitted = {name: np.empty_like(value) for name, value in flat.items()}
  iterations = []
  for real, inputs in _device_groups(cfg, x_NxS, class_N, chrom_S, block, mesh, flat, z_NxP):
    out, count = _fit_blocks(
      *inputs,
      cfg=cfg,
      class_rows=class_rows,
      max_iter=int(max_iter),
      tol=float(tol),
      solver=solver,
      mesh=mesh,
    )
    out, count = jax.device_get((out, count))
    for i, lo in enumerate(real):
      hi = min(lo + block, s)
      for name in fitted:
        fitted[name][lo:hi] = out[name][i][: hi - lo]
      iterations.append(int(count[i]))
  params = fitted
  bad = [name for name, value in params.items() if not np.all(np.isfinite(value))]
  if bad:
    raise FloatingPointError(
      f'ar fit diverged: non-finite {", ".join(bad)}; raise ar.l2_shared and ar.l2_class'
    )
  info = {
    'iterations_max': max(iterations),
    'iterations_mean': float(np.mean(iterations)),
    'blocks': len(iterations),
  }
  if val is not None:
    x_val, class_val, *z_val = val
    info['val_log_likelihood'] = log_likelihood(
      cfg,
      params,
      x_val,
      class_val,
      chrom_S,
      z_NxP=z_val[0] if z_val else None,
      block_snps=block,
      mesh=mesh,
    ) / max(len(x_val), 1)
  info['wall_s'] = round(time.time() - start, 3)
  logging.info(
    'ar: fit %d sequences x %d SNPs in %d blocks (%.1f s; %s iterations mean %.1f, max %d)',
    len(x_NxS),
    s,
    len(iterations),
    info['wall_s'],
    solver,
    info['iterations_mean'],
    info['iterations_max'],
  )
  return params, info


def log_likelihood(
  cfg: model_lib.ARConfig,
  params: dict,
  x_NxS: np.ndarray,
  class_N: np.ndarray,
  chrom_S: np.ndarray,
  *,
  z_NxP: np.ndarray | None = None,
  block_snps: int = 256,
  mesh: jax.sharding.Mesh | None = None,
) -> float:
  """Total log-likelihood of sequences under the model (validation, model choice)."""
  mesh = distributed.make_mesh() if mesh is None else mesh
  _, class_rows = class_order(np.asarray(class_N), cfg.num_classes)
  total = 0.0
  groups = _device_groups(cfg, x_NxS, class_N, chrom_S, block_snps, mesh, params, z_NxP)
  for real, inputs in groups:
    ll = _block_log_likelihood(*inputs, cfg=cfg, class_rows=class_rows)
    total += float(np.sum(np.asarray(ll)[: len(real)]))
  return total
