"""Benchmark of the embedding: how well decode(encode(x)) gives back genotypes, and speed.

  .venv/bin/python bench/embedding.py [--workdir=/tmp/gdiff-bench-embedding] \
      [--set data.simulate.num_samples=800 ...]

`--set` changes the cohort configs (both) before anything is prepared; use a fresh
--workdir with it, as prepared cohorts are cached there.

1. Reconstruction on the TEST split (codec fit on train only) of the default
   simulated cohorts (configs/als.py, configs/kg1.py, made by
   gdiff.data.prepare.prepare and cached in --workdir), for several grouping /
   component rules and both decoders: genotype concordance, concordance over
   entries where either genotype is non-reference, allele-frequency r. The
   reference row is the allele-frequency r between real test and real train
   (what sampling noise allows).
2. Batched PCA fit time against the number of groups (random genotypes, 32 SNPs
   per group), next to a per-group numpy loop.
3. Encode/decode throughput and the TFDS array_record write / read / grain loader.
Prints markdown tables (timings are noisy on a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from quality import parse_set, set_value  # noqa: E402

from configs import als, kg1  # noqa: E402
from gdiff import workdir as wd  # noqa: E402
from gdiff.data import cohort as cohort_lib  # noqa: E402
from gdiff.data import dataset  # noqa: E402
from gdiff.data import prepare as prepare_lib  # noqa: E402
from gdiff.embedding import codec as codec_lib  # noqa: E402
from gdiff.embedding import fit, grouping, pca  # noqa: E402

COHORTS = {'als': als.get_config, 'kg1': kg1.get_config}
SETTINGS: dict = {}  # --set key=value, applied to every cohort config


def cohort_config(name: str):
  config = COHORTS[name]()
  for key, value in SETTINGS.items():
    set_value(config, key, value)
  return config


# name -> embedding overrides
VARIANTS = {
  'paper (w32, default)': {},
  'fixed 4 (w32)': {'rule': 'fixed', 'fixed_components': 4},
  'full (w16, 8 slots)': {'rule': 'full', 'window_snps': 16},
  'full (w32, 16 slots)': {'rule': 'full', 'slots': 16},
}


def _af_r(a, b):
  return float(np.corrcoef(a.mean(0), b.mean(0))[0, 1])


def reconstruction(workdir: str) -> None:
  print('\n## decode(encode(x)) on the test split\n')
  print(
    '| cohort | variant | groups | real entries / SNPs | decoder | concordance '
    '| non-ref concordance | allele-freq r | fit s |'
  )
  print('|---|---|---|---|---|---|---|---|---|')
  for name in COHORTS:
    config = cohort_config(name)
    data_dir = wd.Layout(os.path.join(workdir, name)).data
    prepare_lib.prepare(config.data, data_dir, seed=config.seed)
    cohort = cohort_lib.load_cohort(data_dir)
    variants = cohort.variants()
    train, test = cohort.dosages('train'), cohort.dosages('test')
    for variant, overrides in VARIANTS.items():
      cfg = config.embedding.copy_and_resolve_references()
      cfg.update(overrides)
      start = time.perf_counter()
      groups = grouping.make_groups(cfg, variants)
      codec = fit.fit_codec(train, groups, cfg)
      seconds = time.perf_counter() - start
      for decoder in codec_lib.DECODERS:
        q = fit.reconstruction_quality(codec, test, decoder=decoder)
        print(
          f'| {name} ({len(train)} train / {len(test)} test) | {variant} '
          f'| {groups.num_groups} | {int(codec.mask_GxC.sum())} / {codec.num_snps} '
          f'| {decoder} | {q["concordance"]:.4f} | {q["concordance_nonref"]:.4f} '
          f'| {q["allele_freq_r"]:.4f} | {seconds:.2f} |'
        )
    print(f'| {name} | reference: real test vs real train | | | | | | {_af_r(test, train):.4f} | |')


def _numpy_loop_fit(x, members, slots):
  for snps in members:
    xs = x[:, snps].astype(np.float64)
    w, v = np.linalg.eigh(np.cov(xs, rowvar=False))
    v[:, ::-1][:, :slots].copy()


def fit_timing() -> None:
  print('\n## batched PCA fit time vs number of groups (1000 train rows, 32 SNPs/group)\n')
  print('| groups | SNPs | first call s (incl. compile) | second call s | numpy per-group loop s |')
  print('|---|---|---|---|---|')
  cfg = cohort_config('als').embedding
  rng = np.random.default_rng(0)
  for num_groups in (125, 500, 1000, 2000):
    s = 32 * num_groups
    x = rng.integers(0, 3, (1000, s), dtype=np.int8)
    v = cohort_lib.Variants(
      chrom=np.array(['1'] * s),
      pos=np.arange(1, s + 1),
      id=np.array(['.'] * s),
      ref=np.array(['A'] * s),
      alt=np.array(['C'] * s),
    )
    groups = grouping.make_groups(cfg, v)
    times = []
    for _ in range(2):
      start = time.perf_counter()
      pca.fit(x, groups, cfg)
      times.append(time.perf_counter() - start)
    loop = ''
    if num_groups <= 1000:
      start = time.perf_counter()
      _numpy_loop_fit(x, groups.members(), 8)
      loop = f'{time.perf_counter() - start:.2f}'
    print(f'| {num_groups} | {s} | {times[0]:.2f} | {times[1]:.2f} | {loop} |')


def io_timing(workdir: str) -> None:
  print('\n## codec and input pipeline (als cohort)\n')
  config = cohort_config('als')
  cohort = cohort_lib.load_cohort(wd.Layout(os.path.join(workdir, 'als')).data)
  train = cohort.dosages('train')
  groups = grouping.make_groups(config.embedding, cohort.variants())
  codec = fit.fit_codec(train, groups, config.embedding)
  codec.decode(codec.encode(train[:8]))  # compile
  rows = np.concatenate([train] * 8)
  start = time.perf_counter()
  emb = codec.encode(rows)
  enc = time.perf_counter() - start
  start = time.perf_counter()
  codec.decode(emb)
  dec = time.perf_counter() - start
  print('| step | rows | seconds | rows/s |')
  print('|---|---|---|---|')
  print(f'| encode ({codec.num_snps} SNPs) | {len(rows)} | {enc:.3f} | {len(rows) / enc:.0f} |')
  print(f'| decode | {len(rows)} | {dec:.3f} | {len(rows) / dec:.0f} |')
  emb_dir = os.path.join(workdir, 'als', 'embedding-io')
  shutil.rmtree(emb_dir, ignore_errors=True)
  os.makedirs(emb_dir)
  labels = np.zeros(len(emb), np.int32)
  start = time.perf_counter()
  dataset.write_splits(emb_dir, {'train': (emb, labels)}, classes=['x'])
  write = time.perf_counter() - start
  print(
    f'| tfds array_record write ({emb.shape[1]}x{emb.shape[2]}) | {len(emb)} | {write:.3f} '
    f'| {len(emb) / write:.0f} |'
  )
  start = time.perf_counter()
  got = dataset.load_split(emb_dir, 'train')
  read = time.perf_counter() - start
  assert np.array_equal(got['emb'], emb)
  print(f'| tfds load_split | {len(emb)} | {read:.3f} | {len(emb) / read:.0f} |')
  start = time.perf_counter()
  n = 0
  for batch in dataset.make_loader(emb_dir, 'train', 32, seed=0, num_epochs=1):
    n += len(batch['label'])
  loader = time.perf_counter() - start
  print(f'| grain loader, batch 32, shuffled | {n} | {loader:.3f} | {n / loader:.0f} |')


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workdir', default='/tmp/gdiff-bench-embedding')
  parser.add_argument('--skip', default='', help='comma list of: reconstruction,fit,io')
  parser.add_argument(
    '--set',
    action='append',
    default=[],
    help='KEY=VALUE config override for both cohorts (repeatable)',
  )
  args = parser.parse_args()
  SETTINGS.update(parse_set(s) for s in args.set)
  logging.basicConfig(level=logging.WARNING)
  skip = set(filter(None, args.skip.split(',')))
  os.makedirs(args.workdir, exist_ok=True)
  if 'reconstruction' not in skip:
    reconstruction(args.workdir)
  if 'fit' not in skip:
    fit_timing()
  if 'io' not in skip:
    io_timing(args.workdir)


if __name__ == '__main__':
  main()
