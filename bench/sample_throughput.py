"""Sampling throughput (samples/s) of DDPM, DDIM, DPM-Solver++(2M); decode + export per sample;
with --workdir, the people/s of a finished workdir's generator (the default `ar`).

  .venv/bin/python bench/sample_throughput.py [--groups=128] [--batch=64] [--ddpm_batch=16]
  .venv/bin/python bench/sample_throughput.py --workdir=W [--people=3840]

--workdir: `gdiff.load(W).sample(people)` timed after one warm-up call (compilation),
without and with the release gate (its screening against every training person), and
`Model.write` of the drawn cohort (VCF + .tbi, PLINK, HDF5).

Network: configs/als.py's default (mlp_cnn, laptop sizes) with randomly initialised
parameters (throughput does not depend on the weights). Shape: the default simulated
ALS cohort, 4,000 SNPs in windows of 32 -> 128 groups x 8 slots; the codec is fitted on
random genotypes of that shape. Each sampler is compiled once (timed separately), then
timed on one batch. Decode + export: codec.decode of the sampled batch and
`gdiff.export.write_cohort` (HDF5 with the embedding, bgzipped VCF, PLINK, labels).
Prints markdown tables; timings are noisy on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import als  # noqa: E402
from gdiff import diffusion, distributed, export, models, sampling  # noqa: E402
from gdiff.data.cohort import Variants  # noqa: E402
from gdiff.embedding import fit, grouping  # noqa: E402


def _codec(config, num_snps: int, num_people: int = 640):
  rng = np.random.default_rng(0)
  half = num_snps // 2
  variants = Variants(
    chrom=np.array(['1'] * half + ['2'] * (num_snps - half)),
    pos=np.r_[np.arange(1, half + 1), np.arange(1, num_snps - half + 1)] * 500,
    id=np.array([f'rs{i}' for i in range(num_snps)]),
    ref=np.full(num_snps, 'A'),
    alt=np.full(num_snps, 'G'),
  )
  dosage = rng.binomial(2, rng.uniform(0.05, 0.5, num_snps), (num_people, num_snps))
  groups = grouping.make_groups(config.embedding, variants)
  return fit.fit_codec(dosage.astype(np.int8), groups, config.embedding), variants


def _time(fn, *args):
  t0 = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - t0


def workdir_rows(workdir: str, people: int) -> None:
  """People/s of a finished workdir's generator: draw, draw + release gate, write."""
  import gdiff

  model = gdiff.load(workdir)
  model.sample(min(people, 64), seed=0, gate=False)  # compile
  print(f'\n{workdir}: generator {model.generator}, {len(model.variants)} SNPs\n')
  print('| step | people | seconds | people/s |')
  print('|---|---|---|---|')
  for name, gate in (('draw', False), ('draw + release gate', True)):
    t0 = time.perf_counter()
    dosage, labels = model.sample(people, seed=1, gate=gate)
    secs = time.perf_counter() - t0
    print(f'| {name} | {people} | {secs:.2f} | {people / secs:.0f} |')
  with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    model.write(os.path.join(tmp, 'synthetic'), dosage, labels)
    secs = time.perf_counter() - t0
  print(f'| write (VCF + .tbi, PLINK, HDF5) | {people} | {secs:.2f} | {people / secs:.0f} |')


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--groups', type=int, default=128)
  parser.add_argument('--batch', type=int, default=64, help='DDIM and DPM-Solver++ batch')
  parser.add_argument('--ddpm_batch', type=int, default=16, help='DDPM batch (500 steps)')
  parser.add_argument('--workdir', default='', help='time this finished workdir instead')
  parser.add_argument('--people', type=int, default=3840, help='people drawn (--workdir)')
  args = parser.parse_args()
  if args.workdir:
    workdir_rows(args.workdir, args.people)
    return

  config = als.get_config()
  codec, variants = _codec(config, args.groups * config.embedding.window_snps)
  g, c = codec.mask_GxC.shape
  mc = models.model_config(config, g, c, 2, mask_GxC=codec.mask_GxC)
  params = jax.jit(models.init_params, static_argnums=0)(mc, jax.random.key(0))
  model = models.build(mc)
  apply_fn = lambda p, x, t, y: model.apply({'params': p}, x, t, y, train=False)
  schedule = diffusion.make_schedule('cosine', config.diffusion.num_steps)
  mesh = distributed.make_mesh()
  print(
    f'\nmodel {mc.name}, {models.count_params(mc):,} parameters, shape ({g}, {c}), '
    f'{len(variants)} SNPs, T={schedule.num_steps}, devices: {jax.devices()}\n'
  )
  print('| sampler | network calls | batch | compile s | sample s | samples/s | calls x rows/s |')
  print('|---|---|---|---|---|---|---|')
  runs = [
    ('DDPM', 'ddpm', {}, schedule.num_steps, args.ddpm_batch),
    ('DDIM', 'ddim', {'steps': 50, 'eta': 0.0}, 50, args.batch),
    ('DPM-Solver++(2M)', 'dpmpp2m', {'steps': 20}, 20, args.batch),
    ('DPM-Solver++(2M)', 'dpmpp2m', {'steps': 10}, 10, args.batch),
  ]
  emb = None
  for name, method, options, calls, batch in runs:
    sampler = sampling.make_sampler(
      method, apply_fn, schedule, codec.mask_GxC, clip_x0=10.0, **options
    )
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
    labels = jax.device_put(np.arange(batch, dtype=np.int32) % 2, sharding)
    ids = jax.device_put(np.arange(batch, dtype=np.int32), sharding)
    compile_s = _time(
      lambda f, *a: f.lower(*a).compile(), sampler, params, jax.random.key(0), labels, ids
    )
    run_s = _time(sampler, params, jax.random.key(1), labels, ids)
    print(
      f'| {name}-{calls} | {calls} | {batch} | {compile_s:.1f} | {run_s:.2f} | '
      f'{batch / run_s:.1f} | {calls * batch / run_s:.0f} |'
    )
    emb = np.asarray(sampler(params, jax.random.key(1), labels, ids))

  print('\n| step | samples | seconds | ms per sample |')
  print('|---|---|---|---|')
  codec.decode(emb[:8])  # compile
  t0 = time.perf_counter()
  dosage = codec.decode(emb)
  decode_s = time.perf_counter() - t0
  n = len(emb)
  with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    export.write_cohort(
      tmp,
      dosage,
      variants,
      export.sample_ids(n),
      np.array(['case', 'control'])[np.arange(n) % 2],
      ('case', 'control'),
      emb_NxGxC=emb,
    )
    export_s = time.perf_counter() - t0
  for step, secs in (('decode', decode_s), ('export (h5+vcf.gz+plink+tsv)', export_s)):
    print(f'| {step} | {n} | {secs:.3f} | {1000 * secs / n:.2f} |')


if __name__ == '__main__':
  main()
