"""Training throughput of the four networks: samples/s and FLOP/s of a full step.

A step is forward + backward + AdamW + EMA (gdiff.train's compiled step, one
device, as the training loop runs it between logged steps: without clipping, the
gradient norm is computed on logged steps only). The machine's f32 matmul peak is
measured in the same run, so the achieved FLOP/s can be read as a share of it. Shapes:

  default  configs/base.py's networks (what configs/als.py carries) at G=128 groups, batch 32
  paper    gdiff's networks at the paper's sizes (configs/base.py: a U-Net with one ResBlock per
           level and pool resampling), 1,024 genes x 8, batch 32 (PAPER.md's speed table shape)
  paper3   the same with the paper's exact U-Net (base.paper_networks)
  als      the paper's sizes at the ALS shape, 18,432 genes x 8, batch 4 (big; opt-in)

The PyTorch reference is never a constant here: time it in the same session
(the seed's code, outside the project; see docs/benchmarks.md) and pass its
samples/s with --torch=mlp=..,cnn=..,mlp_cnn=.. to get the ratios. On a shared
machine the wall-clock rate moves with the load (printed); CPU seconds per
step (process time, both threads summed) move less.

XLA compiler options side by side: --variants='base:;fm:xla_cpu_enable_fast_math=true'
compiles the same step once per variant (`Lowered.compile(compiler_options=...)`, so
XLA_FLAGS stays as it is) and times the variants interleaved in one process (A, B, A, B),
which on a shared machine is the only fair comparison. Each variant's compile time, its
samples/s and its largest relative difference from the first variant's loss are printed.

Usage:
  .venv/bin/python bench/train_throughput.py --shapes=default,paper --models=mlp,cnn
  .venv/bin/python bench/train_throughput.py --shapes=paper --models=cnn --steps 2 --rounds 3 \
    --variants='base:;v512:xla_cpu_prefer_vector_width=512'
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from configs import als, base
from gdiff import distributed, models, train

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quality import parse_set, set_value  # noqa: E402  (bench/quality.py: --set parsing)

SHAPES = {
  'default': (als.get_config, 128, 32),
  'paper': (base.get_config, 1024, 32),
  'paper3': (lambda: base.paper_networks(base.get_config()), 1024, 32),
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


def setup(name: str, shape: str, step_kind: str, dtype: str = 'float32', overrides=()):
  """(model config, trainer, one fixed batch) for network `name` at `shape`.

  overrides: 'section.key=value' strings applied to the config (e.g. a lighter network,
  model.cnn_num_res_blocks=1), values parsed as Python literals.
  """
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
  for item in overrides:
    set_value(config, *parse_set(item))
  mc = models.model_config(config, genes, 8, 2)
  trainer = train.get_trainer(mc, config, distributed.make_mesh(jax.devices()[:1]))
  rng = np.random.default_rng(0)
  batch_np = {
    'emb': rng.standard_normal((batch, genes, 8)).astype(np.float32),
    'label': rng.integers(0, 2, batch).astype(np.int32),
  }
  return mc, trainer, trainer.global_batch(batch_np)


def bench_one(name: str, shape: str, steps: int, dtype: str, step_kind: str, overrides=()) -> dict:
  _, genes, batch = SHAPES[shape]
  mc, trainer, data = setup(name, shape, step_kind, dtype, overrides)
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


def parse_variants(text: str) -> dict[str, dict[str, object]]:
  """'name:opt=val opt=val;name2:' -> {name: {opt: val}}; 'true'/'false'/ints are typed.

  Options within a variant are separated by spaces (a value may hold commas).
  """

  def typed(v: str):
    if v in ('true', 'false'):
      return v == 'true'
    return int(v) if v.lstrip('-').isdigit() else v

  out = {}
  for item in filter(None, text.split(';')):
    name, _, opts = item.partition(':')
    out[name] = {k: typed(v) for k, v in (kv.split('=', 1) for kv in opts.split())}
  return out


def bench_variants(
  name: str, shape: str, steps: int, rounds: int, step_kind: str, variants: dict, overrides=()
) -> list[dict]:
  """One step compiled per compiler-option variant, timed interleaved (A, B, A, B, ...)."""
  batch = SHAPES[shape][2]
  _, trainer, data = setup(name, shape, step_kind, overrides=overrides)
  key = jax.random.key(0)
  lowered = trainer.train_step.lower(trainer.init(jax.random.key(1)), data, key)
  rows = {}
  for vname, opts in variants.items():
    t0, c0 = time.perf_counter(), time.process_time()
    compiled = lowered.compile(compiler_options=opts)
    compile_s, compile_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    state = trainer.init(jax.random.key(1))
    state, m = compiled(state, data, key)  # warm-up; the first step's metrics are compared
    loss = float(m['loss'])
    rows[vname] = dict(
      variant=vname,
      compiled=compiled,
      state=state,
      compile_s=compile_s,
      compile_cpu_s=compile_cpu_s,
      loss=loss,
      times=[],
    )
  for _ in range(rounds):
    for r in rows.values():
      t0 = time.perf_counter()
      for _ in range(steps):
        r['state'], m = r['compiled'](r['state'], data, key)
      jax.block_until_ready(m)
      r['times'].append((time.perf_counter() - t0) / steps)
  first = next(iter(rows.values()))['loss']
  out = []
  for r in rows.values():
    best = min(r['times'])
    out.append(
      dict(
        name=name,
        variant=r['variant'],
        samples_per_s=batch / best,
        median_samples_per_s=batch / float(np.median(r['times'])),
        compile_s=r['compile_s'],
        compile_cpu_s=r['compile_cpu_s'],
        loss_rel_diff=abs(r['loss'] - first) / abs(first),
      )
    )
  return out


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
  p.add_argument(
    '--variants',
    default='',
    help="XLA compiler options compared in one process: 'base:;fm:xla_cpu_enable_fast_math=true'",
  )
  p.add_argument(
    '--set',
    action='append',
    default=[],
    help='config override, repeatable: --set model.cnn_num_res_blocks=1 (measure, not adopt)',
  )
  p.add_argument('--rounds', type=int, default=3, help='interleaved rounds of --steps (variants)')
  args = p.parse_args()
  print(f'devices: {jax.devices()}')
  peak = matmul_peak()
  peak_bf16 = matmul_peak(dtype=jnp.bfloat16)
  print(f'matmul peak (2048^3): f32 {peak / 1e9:.1f} GFLOP/s, bf16 {peak_bf16 / 1e9:.1f} GFLOP/s')
  if args.peak_only:
    return
  if args.variants:
    variants = parse_variants(args.variants)
    print(
      '| network | shape | variant | options | samples/s (best; median) | compile s (CPU s) | '
      'first-step loss rel. diff |'
    )
    print('|---|---|---|---|---|---|---|')
    for shape in args.shapes.split(','):
      for name in args.models.split(','):
        for r in bench_variants(
          name, shape, args.steps, args.rounds, args.step, variants, args.set
        ):
          opts = ' '.join(f'{k}={v}' for k, v in variants[r['variant']].items()) or '-'
          print(
            f'| {name} | {shape} | {r["variant"]} | {opts} | {r["samples_per_s"]:.1f}; '
            f'{r["median_samples_per_s"]:.1f} | {r["compile_s"]:.0f} ({r["compile_cpu_s"]:.0f}) '
            f'| {r["loss_rel_diff"]:.1e} |',
            flush=True,
          )
    print(f'load {os.getloadavg()[0]:.1f}')
    return
  torch_rates = {k: float(v) for k, v in (kv.split('=') for kv in args.torch.split(',') if kv)}
  rows = []
  for shape in args.shapes.split(','):
    for name in args.models.split(','):
      r = bench_one(name, shape, args.steps, args.dtype, args.step, args.set)
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
    torch = torch_rates.get(r['name']) if r['shape'] in ('paper', 'paper3') else None
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
