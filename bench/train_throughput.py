"""Training throughput of the four networks: samples/s and FLOP/s of a full step.

A step is forward + backward + AdamW + EMA (gdiff.train's compiled step, one
device). The machine's f32 matmul peak is measured in the same run, so the
achieved FLOP/s can be read as a share of it. Shapes:

  default  configs/als.py sizes, G=128 groups (the default simulated cohort), batch 32
  paper    the paper's network sizes (configs/base.py), 1,024 genes x 8, batch 32
           (the shape of PAPER.md's PyTorch speed table)
  als      the paper's sizes at the ALS shape, 18,432 genes x 8, batch 4 (big; opt-in)

The PyTorch reference is never a constant here: time it in the same session
(the seed's code, outside the project; see docs/benchmarks.md) and pass its
samples/s with --torch=mlp=..,cnn=..,mlp_cnn=.. to get the ratios. On a shared
machine the wall-clock rate moves with the load (printed); CPU seconds per
step (process time, both threads summed) move less.

Usage:
  .venv/bin/python bench/train_throughput.py --shapes=default,paper --models=mlp,cnn
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from configs import als, base
from gdiff import distributed, models, train

SHAPES = {
  'default': (als.get_config, 128, 32),
  'paper': (base.get_config, 1024, 32),
  'als': (base.get_config, 18_432, 4),
}


def matmul_peak(n: int = 2048, dtype=jnp.float32, reps: int = 10) -> float:
  """FLOP/s of an n x n x n matmul (best of `reps`)."""
  a = jnp.ones((n, n), dtype)
  f = jax.jit(lambda a, b: a @ b)
  f(a, a).block_until_ready()
  best = float('inf')
  for _ in range(reps):
    t0 = time.perf_counter()
    f(a, a).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  return 2 * n**3 / best


def bench_one(name: str, shape: str, steps: int, dtype: str, step_kind: str) -> dict:
  get_config, genes, batch = SHAPES[shape]
  config = get_config()
  if step_kind == 'paper':  # what the PyTorch baseline does: Adam, no clipping, no EMA
    config.train.grad_clip = 0.0
    config.train.ema_decay = 0.0
    config.train.weight_decay = 0.0
    config.train.recombine_segment_groups = 0.0
  config.model.name = name
  config.model.dtype = dtype
  config.input.batch_size = batch
  mc = models.model_config(config, genes, 8, 2)
  trainer = train.get_trainer(mc, config, distributed.make_mesh(jax.devices()[:1]))
  rng = np.random.default_rng(0)
  batch_np = {
    'emb': rng.standard_normal((batch, genes, 8)).astype(np.float32),
    'label': rng.integers(0, 2, batch).astype(np.int32),
  }
  data = trainer.global_batch(batch_np)
  key = jax.random.key(0)
  t0 = time.perf_counter()
  state = trainer.init(jax.random.key(1))
  compiled = trainer.train_step.lower(state, data, key).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list | tuple) else cost
  flops = float(cost.get('flops', float('nan')))
  state, m = trainer.train_step(state, data, key)  # warm-up
  jax.block_until_ready(m)
  compile_s = time.perf_counter() - t0
  t0, c0 = time.perf_counter(), time.process_time()
  for _ in range(steps):
    state, m = trainer.train_step(state, data, key)
  jax.block_until_ready(m)
  step_s = (time.perf_counter() - t0) / steps
  cpu_s = (time.process_time() - c0) / steps
  return dict(
    name=name,
    shape=shape,
    genes=genes,
    batch=batch,
    dtype=dtype,
    step=step_kind,
    params=models.count_params(mc),
    samples_per_s=batch / step_s,
    step_s=step_s,
    cpu_s=cpu_s,
    flops_per_step=flops,
    flops_per_s=flops / step_s,
    compile_s=compile_s,
  )


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--models', default='mlp,cnn,mlp_cnn,transformer')
  p.add_argument('--shapes', default='default,paper')
  p.add_argument('--steps', type=int, default=3)
  p.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16'])
  p.add_argument(
    '--step',
    default='gdiff',
    choices=['gdiff', 'paper'],
    help='gdiff: AdamW + clipping + EMA (the defaults); paper: Adam only, as the PyTorch baseline',
  )
  p.add_argument(
    '--torch',
    default='',
    help='PyTorch samples/s at the paper shape, timed in this session: mlp=238,cnn=18.2',
  )
  p.add_argument('--peak_only', action='store_true')
  args = p.parse_args()
  print(f'devices: {jax.devices()}')
  peak = matmul_peak()
  peak_bf16 = matmul_peak(dtype=jnp.bfloat16)
  print(f'matmul peak (2048^3): f32 {peak / 1e9:.1f} GFLOP/s, bf16 {peak_bf16 / 1e9:.1f} GFLOP/s')
  if args.peak_only:
    return
  torch_rates = {k: float(v) for k, v in (kv.split('=') for kv in args.torch.split(',') if kv)}
  rows = []
  for shape in args.shapes.split(','):
    for name in args.models.split(','):
      r = bench_one(name, shape, args.steps, args.dtype, args.step)
      rows.append(r)
      print(
        f'  {name}/{shape}: {r["samples_per_s"]:.1f} samples/s, {r["cpu_s"]:.2f} CPU s/step '
        f'(compile {r["compile_s"]:.0f} s, load {os.getloadavg()[0]:.1f})',
        flush=True,
      )
  print()
  print(
    '| network | shape (G x 8) | batch | step | params | samples/s | CPU s/step | GFLOP/s '
    '| % f32 peak | PyTorch samples/s | speed-up |'
  )
  print('|---|---|---|---|---|---|---|---|---|---|---|')
  for r in rows:
    torch = torch_rates.get(r['name']) if r['shape'] == 'paper' else None
    ratio = f'{r["samples_per_s"] / torch:.2f}x' if torch else '-'
    print(
      f'| {r["name"]} | {r["shape"]} ({r["genes"]}) | {r["batch"]} | '
      f'{r["step"]} {r["dtype"]} | '
      f'{r["params"] / 1e6:.1f}M | {r["samples_per_s"]:.1f} | {r["cpu_s"]:.2f} | '
      f'{r["flops_per_s"] / 1e9:.1f} | '
      f'{100 * r["flops_per_s"] / peak:.0f}% | {torch or "-"} | {ratio} |'
    )


if __name__ == '__main__':
  main()
