"""Data-parallel diffusion training with validation, checkpoints and resume.

`train_and_evaluate(config, workdir)` trains the network named by
`config.model.name` on W/embedding (train split), evaluates the masked
epsilon loss on the val split every `train.eval_every` steps, keeps the latest
checkpoints (resume, including the data-iterator position) and the best one on
val loss (sampling), and writes TensorBoard events and W/logs/metrics.jsonl.
Sampling restores parameters with `gdiff.checkpoint.restore_params` (no trainer).

Parallelism: one 'data' mesh axis over all devices; the batch is sharded on
it, the state is replicated. Each process reads its own shard of the data.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gdiff import checkpoint, diffusion, distributed, models, rng, xla_cpu
from gdiff import train_state as ts
from gdiff import workdir as wd
from gdiff.data import dataset
from gdiff.errors import InputError


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """The hyperparameters compiled into the train step (hashable: one compile per value)."""

  learning_rate: float
  warmup_steps: int
  num_steps: int
  grad_clip: float
  weight_decay: float
  ema_decay: float
  label_dropout: float
  schedule: str
  diffusion_steps: int
  recombine_segment_groups: float = 0.0
  recombine_prob: float = 1.0
  prediction: str = 'eps'

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> StepConfig:
    t = config.train
    return cls(
      float(t.learning_rate),
      int(t.warmup_steps),
      int(t.num_steps),
      float(t.grad_clip),
      float(t.weight_decay),
      float(t.ema_decay),
      float(config.diffusion.label_dropout),
      str(config.diffusion.schedule),
      int(config.diffusion.num_steps),
      float(t.recombine_segment_groups),
      float(t.recombine_prob),
      str(config.diffusion.prediction),
    )

  def as_train_config(self) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
      dict(
        learning_rate=self.learning_rate,
        warmup_steps=self.warmup_steps,
        num_steps=self.num_steps,
        grad_clip=self.grad_clip,
        weight_decay=self.weight_decay,
      )
    )


def get_trainer(
  mc: models.ModelConfig, config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh
) -> Trainer:
  """The (cached) compiled training functions for a network, hyperparameters and mesh.

  Cached so that resuming, restoring and repeated runs in one process (tests,
  notebooks) reuse the compiled step instead of compiling it again.
  """
  return _trainer(mc, StepConfig.from_config(config), mesh)


@functools.lru_cache(maxsize=4)
def _trainer(mc, sc, mesh):
  return Trainer(mc, sc, mesh)


@dataclasses.dataclass(eq=False)
class Trainer:
  """The jitted init, train and eval steps for one network, StepConfig and mesh.

  `train_step` returns {'loss'} (and 'grad_norm' when clipping computes it anyway);
  `train_step_logged` always adds 'grad_norm'. Both make the same update.
  """

  mc: models.ModelConfig
  sc: StepConfig
  mesh: jax.sharding.Mesh

  def __post_init__(self):
    sc = self.sc
    self.model = models.build(self.mc)
    self.tx = ts.make_optimizer(sc.as_train_config())
    self.lr_schedule = ts.learning_rate_schedule(sc.as_train_config())
    self.schedule = diffusion.make_schedule(sc.schedule, sc.diffusion_steps)
    self.mask_GxC = jnp.asarray(self.mc.mask_GxC)
    self.replicated = NamedSharding(self.mesh, P())
    self.batch_sharding = NamedSharding(self.mesh, P('data'))
    init = functools.partial(
      ts.init_state,
      model=self.model,
      dummy_inputs=models.dummy_inputs(self.mc),
      tx=self.tx,
      use_ema=sc.ema_decay > 0,
    )
    abstract = jax.eval_shape(init, jax.random.key(0))
    self.state_sharding = jax.tree.map(lambda _: self.replicated, abstract)
    self.abstract_state = jax.tree.map(
      lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, self.state_sharding
    )
    self._init = jax.jit(init, out_shardings=self.state_sharding)
    step = functools.partial(
      ts.train_step,
      model=self.model,
      tx=self.tx,
      schedule=self.schedule,
      mask_GxC=self.mask_GxC,
      num_classes=self.mc.num_classes,
      label_dropout=sc.label_dropout,
      ema_decay=sc.ema_decay,
      recombine_segment_groups=sc.recombine_segment_groups,
      recombine_prob=sc.recombine_prob,
      prediction=sc.prediction,
    )
    jit_step = lambda grad_norm: jax.jit(
      functools.partial(step, grad_norm=grad_norm),
      in_shardings=(self.state_sharding, self.batch_sharding, self.replicated),
      out_shardings=(self.state_sharding, self.replicated),
      donate_argnames='state',
      compiler_options=xla_cpu.step_options(self.mesh.devices.flat[0].platform),
    )
    # Clipping computes the gradient norm anyway, so one step serves every step. Without
    # clipping, the norm is a pass of its own: only logged steps pay it (a second compile).
    self.train_step_logged = jit_step(grad_norm=True)
    self.train_step = self.train_step_logged if sc.grad_clip > 0 else jit_step(grad_norm=False)
    evaluate = functools.partial(
      ts.eval_step,
      model=self.model,
      schedule=self.schedule,
      mask_GxC=self.mask_GxC,
      num_classes=self.mc.num_classes,
      prediction=sc.prediction,
    )
    self.eval_step = jax.jit(
      evaluate,
      in_shardings=(self.state_sharding.params, self.batch_sharding, self.replicated),
      out_shardings=self.replicated,
    )

  def init(self, key: jax.Array) -> ts.TrainState:
    return self._init(key)

  def global_batch(self, local_batch: dict) -> dict:
    """This process's rows -> one global array sharded on 'data'."""
    return {
      k: jax.make_array_from_process_local_data(self.batch_sharding, np.asarray(v))
      for k, v in local_batch.items()
    }

  def val_batches(self, val: dict, batch_size: int) -> list[dict]:
    """The whole val split (every process holds it) as padded, sharded batches."""
    n = len(val['label'])
    num = math.ceil(n / batch_size)
    pad = num * batch_size - n
    arrays = {
      'emb': np.pad(np.asarray(val['emb'], np.float32), ((0, pad), (0, 0), (0, 0))),
      'label': np.pad(np.asarray(val['label'], np.int32), (0, pad)),
      'weight': np.pad(np.ones(n, np.float32), (0, pad)),
    }
    batches = []
    for i in range(num):
      rows = {k: v[i * batch_size : (i + 1) * batch_size] for k, v in arrays.items()}
      batches.append(
        {
          k: jax.make_array_from_callback(v.shape, self.batch_sharding, lambda idx, v=v: v[idx])
          for k, v in rows.items()
        }
      )
    return batches

  def val_loss(self, params, batches: list[dict], key: jax.Array) -> float:
    """Mean val loss; the same key (hence t and noise) for every evaluation."""
    total, weight = 0.0, 0.0
    for i, batch in enumerate(batches):
      s, w = self.eval_step(params, batch, jax.random.fold_in(key, i))
      total, weight = total + s, weight + w
    return float(total / weight)


class MetricsWriter:
  """TensorBoard events and W/logs/metrics.jsonl; a no-op on processes other than 0."""

  def __init__(self, log_dir: str):
    self.active = jax.process_index() == 0
    if not self.active:
      return
    import tensorboardX

    os.makedirs(log_dir, exist_ok=True)
    self.tb = tensorboardX.SummaryWriter(log_dir)
    self.jsonl = open(os.path.join(log_dir, 'metrics.jsonl'), 'a')

  def write(self, step: int, scalars: dict) -> None:
    if not self.active:
      return
    for k, v in scalars.items():
      self.tb.add_scalar(k, v, step)
    self.jsonl.write(json.dumps({'step': step, **scalars}) + '\n')
    self.jsonl.flush()

  def close(self) -> None:
    if self.active:
      self.tb.close()
      self.jsonl.close()


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str,
  *,
  data=None,
  mesh: jax.sharding.Mesh | None = None,
  stop_after: int | None = None,
) -> dict:
  """Trains (or resumes training) and returns the last logged metrics.

  Args:
    config: the gdiff config (model, diffusion, train, input, seed).
    workdir: W; reads W/embedding, writes W/checkpoints and W/logs.
    data: module with `make_loader` and `load_split` (default `gdiff.data.dataset`).
    mesh: the ('data',) mesh (default: all devices).
    stop_after: stop (with a checkpoint) once this step is reached, as if
      interrupted; the schedule still spans `train.num_steps`.

  Returns:
    {'step', 'loss', 'val_loss', ...} of the last step.

  Raises:
    FloatingPointError: the loss or gradient became NaN/Inf (the latest
      checkpoint, saved before, is kept).
  """
  data = dataset if data is None else data
  mesh = distributed.make_mesh() if mesh is None else mesh
  cfg = config
  num_steps = int(cfg.train.num_steps)
  batch_size = int(cfg.input.batch_size)
  if batch_size % mesh.size or batch_size % jax.process_count():
    raise InputError(
      f'config input.batch_size={batch_size} must be a multiple of the '
      f'device count ({mesh.size}) and of the process count ({jax.process_count()})'
    )
  layout = wd.Layout(workdir)
  emb_dir = layout.embedding
  trainer = get_trainer(models.load_model_config(cfg, emb_dir), cfg, mesh)
  logging.info(
    'model %s: %.2fM parameters on %d devices',
    trainer.mc.name,
    models.count_params(trainer.mc) / 1e6,
    mesh.size,
  )

  ckpt_dir = layout.checkpoints
  latest = checkpoint.latest_manager(ckpt_dir, cfg.train.keep_checkpoints)
  best = checkpoint.best_manager(ckpt_dir)
  writer = MetricsWriter(layout.logs)
  # The global batch depends on input.data_shards only, not on the process count.
  shards = dataset.process_shards(
    int(cfg.input.data_shards), batch_size, jax.process_index(), jax.process_count()
  )
  num_shards = len(shards) * jax.process_count()
  iterator = dataset.ShardGroupIterator(
    [
      data.make_loader(
        emb_dir,
        'train',
        batch_size // num_shards,
        seed=int(cfg.input.shuffle_seed),
        shard_index=i,
        shard_count=num_shards,
        worker_count=int(cfg.input.worker_count),
      )
      for i in shards
    ]
  )
  start = latest.latest_step()
  if start is None:
    state = trainer.init(rng.stream(cfg.seed, 'init'))
    start = 0
  else:
    state = checkpoint.restore_latest(latest, start, trainer.abstract_state, iterator)
    logging.info('resuming from step %d', start)
  end = num_steps if stop_after is None else min(num_steps, int(stop_after))

  val = data.load_split(emb_dir, 'val')
  val_batches = trainer.val_batches(val, batch_size) if len(val['label']) else []
  if not val_batches:
    logging.warning('the val split is empty: no validation loss, "best" = latest')
  train_key = rng.stream(cfg.seed, 'train')
  eval_key = rng.stream(cfg.seed, 'eval')
  every = lambda n, s: n > 0 and s % n == 0
  logged = lambda s: every(int(cfg.train.log_every), s) or s == end  # written to the logs

  last = {'step': start}
  pending = None  # (step, device metrics) of the step dispatched last
  t_log = time.time()

  def record(step, metrics_dev):
    nonlocal t_log
    metrics = {k: float(v) for k, v in jax.device_get(metrics_dev).items()}
    if not all(math.isfinite(v) for v in metrics.values()):
      raise FloatingPointError(
        f'training diverged at step {step}: {metrics}; checkpoints up to step '
        f'{latest.latest_step()} are kept in {latest.directory}'
      )
    last.update(step=step, **metrics)
    if logged(step):
      now = time.time()
      metrics['learning_rate'] = float(trainer.lr_schedule(step - 1))
      metrics['steps_per_s'] = int(cfg.train.log_every) / max(now - t_log, 1e-9)
      t_log = now
      writer.write(step, metrics)
      bar.set_postfix(loss=f'{metrics["loss"]:.4f}')

  # Process 0 only, and only on a terminal (disable=None): no '\r' updates in a log file.
  bar = tqdm.tqdm(
    total=end,
    initial=start,
    desc='train',
    unit='step',
    disable=True if jax.process_index() != 0 else None,
  )
  try:
    for step in range(start + 1, end + 1):
      batch = trainer.global_batch(next(iterator))
      train_step = trainer.train_step_logged if logged(step) else trainer.train_step
      state, metrics_dev = train_step(state, batch, train_key)
      if pending is not None:
        record(*pending)  # syncs on step - 1 only, while `step` runs
      pending = (step, metrics_dev)
      bar.update(1)
      do_eval = bool(val_batches) and (every(int(cfg.train.eval_every), step) or step == end)
      do_save = every(int(cfg.train.checkpoint_every), step) or step == end
      if not (do_eval or do_save):
        continue
      record(*pending)  # never checkpoint a state whose loss was not checked
      pending = None
      if do_eval:
        scores = {'val_loss': trainer.val_loss(state.params, val_batches, eval_key)}
        if state.ema_params is not None:
          scores['val_loss_ema'] = trainer.val_loss(state.ema_params, val_batches, eval_key)
        last.update(scores)
        writer.write(step, scores)
        # With EMA the best step is chosen on the EMA parameters' val loss (what
        # sampling uses by default); without, on the raw parameters'.
        chosen = scores.get('val_loss_ema', scores['val_loss'])
        checkpoint.save_best(best, step, state.params, state.ema_params, chosen)
      if do_save:
        checkpoint.save_latest(latest, step, state, iterator)
    if pending is not None:
      record(*pending)
  finally:
    bar.close()
    latest.wait_until_finished()
    best.wait_until_finished()
    latest.close()
    best.close()
    writer.close()
  return last


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises InputError naming the option for bad `train` / `input` settings (before any stage)."""
  t, i = config.train, config.input
  lowest = {
    'train.num_steps': (t.num_steps, 1),
    'input.batch_size': (i.batch_size, 1),
    'train.warmup_steps': (t.warmup_steps, 0),
    'train.log_every': (t.log_every, 0),
    'train.eval_every': (t.eval_every, 0),
    'train.checkpoint_every': (t.checkpoint_every, 0),
    'train.keep_checkpoints': (t.keep_checkpoints, 1),
    'input.worker_count': (i.worker_count, 0),
    'input.data_shards': (i.data_shards, 0),
  }
  for option, (value, low) in lowest.items():
    if int(value) < low:
      raise InputError(f'config {option}={value!r}: must be >= {low}')
  if not t.learning_rate > 0:
    raise InputError(f'config train.learning_rate={t.learning_rate!r}: must be > 0')
  for option, value in (('train.grad_clip', t.grad_clip), ('train.weight_decay', t.weight_decay)):
    if value < 0:
      raise InputError(f'config {option}={value!r}: must be >= 0 (0 disables it)')
  if not 0 <= t.ema_decay < 1:
    raise InputError(f'config train.ema_decay={t.ema_decay!r}: must be in [0, 1) (0 disables it)')
