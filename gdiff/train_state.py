"""The training state pytree and the pure, jit-able train and eval steps.

`TrainState` holds everything that changes during training: the step, the
parameters, their exponential moving average and the optimizer state. The
steps are module-level functions; static parts (network, optimizer, schedule,
mask) are bound with `functools.partial` before `jax.jit`.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gdiff import augment, diffusion, rng


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: number of updates applied
  params: Any
  ema_params: Any
  opt_state: Any


def learning_rate_schedule(train_cfg: ml_collections.ConfigDict) -> optax.Schedule:
  """Linear warm-up from 0 to `learning_rate`, then cosine decay to 0 at `num_steps`."""
  warmup = int(train_cfg.warmup_steps)
  return optax.warmup_cosine_decay_schedule(
    0.0,
    float(train_cfg.learning_rate),
    warmup,
    max(int(train_cfg.num_steps), warmup + 1),
    end_value=0.0,
  )


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
  """g * min(1, max_norm / |g|): optax.clip_by_global_norm's result, written as a product.

  optax's version selects between g and the scaled g, which XLA (CPU) does not
  fuse into the Adam update; the product fuses and saves a full pass over the
  gradients (0.4 GB per step for the paper's 25M-parameter MLP at 1,024 genes).
  """

  def update(grads, state, params=None):
    del params
    norm = optax.tree.norm(grads)
    scale = jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-30))
    return jax.tree.map(lambda g: g * scale.astype(g.dtype), grads), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(train_cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """AdamW with the warm-up + cosine schedule and global-norm clipping (0 disables it)."""
  parts = []
  if train_cfg.grad_clip and train_cfg.grad_clip > 0:
    parts.append(clip_by_global_norm(float(train_cfg.grad_clip)))
  parts.append(
    optax.adamw(learning_rate_schedule(train_cfg), weight_decay=float(train_cfg.weight_decay))
  )
  return optax.chain(*parts)


def init_state(key: jax.Array, *, model, dummy_inputs, tx, use_ema: bool = True) -> TrainState:
  """A fresh state; run under `jax.jit(..., out_shardings=...)`.

  Without EMA (`train.ema_decay` = 0) `ema_params` is None, which saves a
  copy of the parameters and a pass over them every step.
  """
  params = model.init(key, *dummy_inputs, train=False)['params']
  ema = jax.tree.map(jnp.copy, params) if use_ema else None
  return TrainState(
    step=jnp.zeros((), jnp.int32), params=params, ema_params=ema, opt_state=tx.init(params)
  )


def _apply_fn(model):
  def apply(params, x, t, label, train, rngs):
    return model.apply({'params': params}, x, t, label, train=train, rngs=rngs)

  return apply


def train_step(
  state: TrainState,
  batch: dict,
  key: jax.Array,
  *,
  model,
  tx,
  schedule: diffusion.Schedule,
  mask_GxC,
  num_classes: int,
  label_dropout: float,
  ema_decay: float,
  recombine_segment_groups: float = 0.0,
  recombine_prob: float = 1.0,
  prediction: str = 'eps',
  grad_norm: bool = True,
) -> tuple[TrainState, dict]:
  """One AdamW update on the masked diffusion loss, plus the EMA update.

  The step's randomness is `fold_in(key, state.step)`: a resumed run draws the
  same noise as an uninterrupted one. Noise is drawn for the whole global batch
  inside jit, so every example (on every device) gets its own noise and the
  result does not depend on the number of devices.

  Args:
    state: the current state (donated).
    batch: {'emb': (B, G, C) float32, 'label': (B,) int32}, sharded on 'data'.
    key: the train stream's key (the same every step).
    model, tx, schedule, mask_GxC, num_classes, label_dropout, ema_decay: static parts.
    recombine_segment_groups, recombine_prob: recombination augmentation of the batch
      (`gdiff.augment.recombine`; 0 groups disables it).
    prediction: what the network predicts (`gdiff.diffusion.PREDICTIONS`).
    grad_norm: also return the gradient's global norm. Without clipping it is a pass over
      every gradient that Adam's fused update does not need (a fifth of the paper MLP's
      step on a CPU), so the training loop asks for it on logged steps only.

  Returns:
    (new state, {'loss'} and, with `grad_norm`, {'grad_norm'}, as scalars).
  """
  step_key = jax.random.fold_in(key, state.step)
  emb = batch['emb']
  if recombine_segment_groups > 0:
    emb = augment.recombine(
      rng.substream(step_key, 'augment'),
      emb,
      batch['label'],
      recombine_segment_groups,
      recombine_prob,
    )
  loss_fn = lambda p: diffusion.eps_loss(
    _apply_fn(model),
    p,
    schedule,
    emb,
    batch['label'],
    mask_GxC,
    step_key,
    num_classes=num_classes,
    label_dropout=label_dropout,
    train=True,
    prediction=prediction,
  )
  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  ema_params = None
  if state.ema_params is not None:
    # EMA with the usual warm-up, so short runs are not dominated by the init.
    step_f = state.step.astype(jnp.float32)
    decay = jnp.minimum(ema_decay, (1.0 + step_f) / (10.0 + step_f))
    ema_params = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.ema_params, params)
  new_state = state.replace(
    step=state.step + 1, params=params, ema_params=ema_params, opt_state=opt_state
  )
  metrics = {'loss': loss}
  if grad_norm:
    metrics['grad_norm'] = optax.tree.norm(grads)
  return new_state, metrics


def eval_step(
  params,
  batch: dict,
  key: jax.Array,
  *,
  model,
  schedule: diffusion.Schedule,
  mask_GxC,
  num_classes: int,
  prediction: str = 'eps',
) -> tuple[jax.Array, jax.Array]:
  """Weighted sum of per-example validation losses and the weight sum.

  `batch['weight']` is 0 for padding rows of the last batch. Labels are kept
  (no dropout): this is the conditional loss the sampler relies on. The loss is
  the training one (in units of `prediction`'s target).
  """
  per_example = diffusion.eps_loss_per_example(
    _apply_fn(model),
    params,
    schedule,
    batch['emb'],
    batch['label'],
    mask_GxC,
    key,
    num_classes=num_classes,
    label_dropout=0.0,
    train=False,
    prediction=prediction,
  )
  return (per_example * batch['weight']).sum(), batch['weight'].sum()
