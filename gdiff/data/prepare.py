"""The data stage: simulate (when no files are given), ingest with QC, label, split.

`prepare(data_cfg, data_dir, seed)` writes the cohort of `gdiff.data.cohort`
(cohort.h5, shards/, manifest.json, splits.tsv) into `data_dir`. Inputs are
checked before anything long runs; everything is written into a temporary
sibling folder that is renamed to `data_dir` only when complete
(`gdiff.workdir.replacing`), so a failure leaves the workdir as it was. An
existing `data_dir` that gdiff made with the same config from the same input
files (size and modification time, recorded in the manifest) is reused; any
other existing `data_dir` is refused, never deleted.

A simulated cohort is written to `data_dir/source/` (cohort.vcf.gz, labels.tsv)
and then ingested exactly like a user's VCF.
"""

from __future__ import annotations

import json
import logging
import os
import time

import ml_collections
import numpy as np

from gdiff import workdir as workdir_lib
from gdiff.data import cohort as cohort_lib
from gdiff.data import genotypes, ingest_parallel, sources
from gdiff.data import qc as qc_lib
from gdiff.data import simulate as simulate_lib
from gdiff.data import splits as splits_lib
from gdiff.errors import InputError

SOURCE_DIR = 'source'
# Sample groups of the HWE test (`data.qc.hwe_within`), from the labels.
HWE_WITHIN = {
  'class': lambda labels: np.unique(labels, return_inverse=True)[1],
  'all': lambda labels: np.zeros(len(labels), np.int64),
}


# Settings that change how fast the cohort is made, not what it holds.
_SPEED_ONLY = ('ingest_workers', 'ingest_regions_per_worker')


def _same_data(config: dict | None) -> dict | None:
  return None if config is None else {k: v for k, v in config.items() if k not in _SPEED_ONLY}


def _config_dict(data_cfg: ml_collections.ConfigDict) -> dict:
  return json.loads(json.dumps(data_cfg.to_dict(), default=str))


def input_kind(data_cfg: ml_collections.ConfigDict) -> str | None:
  """Which of `data.vcf`, `data.plink`, `data.pgen` is set (None: simulate)."""
  given = [kind for kind in sources.SOURCES if data_cfg.get(kind)]
  if len(given) > 1:
    raise InputError(f'data.{given[0]} and data.{given[1]} are both set; give one of them')
  return given[0] if given else None


def check_config(data_cfg: ml_collections.ConfigDict) -> None:
  """Raises InputError naming the option for inconsistent `data` settings."""
  kind = input_kind(data_cfg)
  if kind and not data_cfg.labels:
    raise InputError(
      f'data.labels: required with data.{kind} '
      f'(a TSV with columns sample and {data_cfg.label_column})'
    )
  if data_cfg.labels and not kind:
    raise InputError(
      'data.labels is set but none of data.vcf, data.plink, data.pgen is; a simulated '
      'cohort brings its own labels'
    )
  if data_cfg.sex_chromosomes not in qc_lib.SEX_CHROMOSOMES:
    raise InputError(
      f'data.sex_chromosomes: unknown {data_cfg.sex_chromosomes!r} '
      f'(known: {", ".join(qc_lib.SEX_CHROMOSOMES)})'
    )
  if not data_cfg.label_column:
    raise InputError('data.label_column: empty')
  for name in ('chunk_variants', 'shard_variants', 'ingest_regions_per_worker'):
    if int(data_cfg[name]) < 1:
      raise InputError(f'data.{name}: must be >= 1, got {data_cfg[name]}')
  if int(data_cfg.ingest_workers) < -1:
    raise InputError(
      f'data.ingest_workers: must be >= -1 (0 serial, -1 all cores), got {data_cfg.ingest_workers}'
    )
  qc = data_cfg.qc
  if qc.hwe_within not in HWE_WITHIN:
    raise InputError(
      f'data.qc.hwe_within: unknown {qc.hwe_within!r} (known: {", ".join(HWE_WITHIN)})'
    )
  for name, lo, hi in (('min_maf', 0.0, 0.5), ('min_call_rate', 0.0, 1.0), ('min_hwe_p', 0.0, 1.0)):
    if not lo <= qc[name] <= hi:
      raise InputError(f'data.qc.{name}: must be in [{lo}, {hi}], got {qc[name]}')
  if qc.bad_calls not in genotypes.BAD_CALLS:
    raise InputError(
      f'data.qc.bad_calls: unknown {qc.bad_calls!r} (known: {", ".join(genotypes.BAD_CALLS)})'
    )


def input_files(data_cfg: ml_collections.ConfigDict) -> dict[str, str]:
  """{option: path} of the input files of the `data` section (none when simulated)."""
  files = {}
  kind = input_kind(data_cfg)
  if kind:
    paths = sources.expand(kind, data_cfg[kind])
    for k, path in enumerate(paths):
      name = f'data.{kind}' if len(paths) == 1 else f'data.{kind}[{k}]'
      for file in sources.FILESETS[kind](path):
        suffix = '' if kind == 'vcf' else f' ({os.path.splitext(file)[1]})'
        files[name + suffix] = file
  for name in ('labels', 'split_file'):
    if data_cfg[name]:
      files[f'data.{name}'] = data_cfg[name]
  return files


def _existing(data_dir: str, data_cfg) -> dict | None:
  """The manifest of a reusable `data_dir`; None when there is none; refuses others."""
  workdir_lib.check_owned(data_dir)
  if not os.path.exists(data_dir):
    return None
  path = os.path.join(data_dir, cohort_lib.MANIFEST_FILE)
  manifest = None
  if os.path.isfile(path):
    try:
      with open(path) as f:
        manifest = json.load(f)
    except (OSError, ValueError):
      manifest = None
  if not manifest or not manifest.get('complete'):
    raise InputError(
      f'{data_dir}: holds no complete cohort (no complete '
      f'{cohort_lib.MANIFEST_FILE}); move it away or use a new --workdir '
      f'(nothing was deleted)'
    )
  if _same_data(manifest.get('config')) != _same_data(_config_dict(data_cfg)):  # nor `seed`
    raise InputError(
      f'{data_dir}: holds a cohort made with a different data config; move it '
      f'away or use a new --workdir (nothing was deleted)'
    )
  workdir_lib.check_inputs(manifest.get('inputs', {}), os.path.dirname(data_dir) or '.')
  return manifest


def _source(data_cfg, tmp_dir: str, final_dir: str) -> tuple[object, str, dict]:
  """Opens the genotype source (simulating it first if needed): (source, labels, info)."""
  kind = input_kind(data_cfg)
  if kind:
    source = sources.open_source(kind, data_cfg[kind])
    return (
      source,
      data_cfg.labels,
      {
        'kind': kind,
        'path': os.path.abspath(source.paths[0]),
        'paths': [os.path.abspath(p) for p in source.paths],
        'labels': os.path.abspath(data_cfg.labels),
        'simulated': False,
      },
    )
  vcf, labels, info = simulate_lib.simulate_to_files(
    data_cfg.simulate, os.path.join(tmp_dir, SOURCE_DIR)
  )
  source = sources.open_source('vcf', vcf)
  final = os.path.join(os.path.abspath(final_dir), SOURCE_DIR)
  return (
    source,
    labels,
    {
      'kind': 'vcf',
      'simulated': True,
      'simulation': info,
      'path': os.path.join(final, simulate_lib.VCF_FILE),
      'labels': os.path.join(final, simulate_lib.LABELS_FILE),
    },
  )


def prepare(data_cfg: ml_collections.ConfigDict, data_dir: str, seed: int = 0) -> dict:
  """Builds the cohort in `data_dir` (see the module docstring).

  Args:
    data_cfg: the `data` config section.
    data_dir: output folder (`WORKDIR/data`); must not exist, or hold a complete
      cohort made with the same config (then it is reused).
    seed: the run's global seed; recorded only. The simulation uses
      `data.simulate.seed` and the split `data.split_seed`, so that runs with
      different global seeds share one cohort.

  Returns:
    The manifest (also written to `data_dir/manifest.json`).
  """
  start = time.time()
  check_config(data_cfg)
  data_dir = os.path.normpath(data_dir)
  manifest = _existing(data_dir, data_cfg)
  if manifest is not None:
    logging.info('prepare: reusing the cohort in %s', data_dir)
    return manifest
  inputs = workdir_lib.fingerprint(input_files(data_cfg))  # before reading them
  with workdir_lib.replacing(data_dir) as tmp:
    manifest = _prepare_into(data_cfg, tmp, data_dir, seed, start, inputs)
  logging.info('prepare: cohort written to %s (%.1f s)', data_dir, manifest['wall_time_s'])
  return manifest


def _prepare_into(data_cfg, tmp: str, data_dir: str, seed: int, start: float, inputs: dict) -> dict:
  source, labels_path, source_info = _source(data_cfg, tmp, data_dir)
  splits_lib.check_samples(source.samples.tolist(), source.path)
  labels = splits_lib.read_labels(labels_path, data_cfg.label_column, source.samples, source.path)
  if data_cfg.split_file:
    split = splits_lib.read_split_file(data_cfg.split_file, source.samples, source.path)
    split_from = os.path.abspath(data_cfg.split_file)
  else:
    split = splits_lib.stratified_split(
      labels, data_cfg.val_fraction, data_cfg.test_fraction, data_cfg.split_seed
    )
    split_from = 'stratified'
  splits_lib.check_split(labels, split, data_cfg.split_file or 'data.val/test_fraction')

  stats = ingest_parallel.ingest(
    source,
    tmp,
    int(data_cfg.chunk_variants),
    int(data_cfg.shard_variants),
    data_cfg.qc,
    _qc_groups(data_cfg.qc, labels, split),
    workers=int(data_cfg.ingest_workers),
    regions_per_worker=int(data_cfg.ingest_regions_per_worker),
    sex_chromosomes=data_cfg.sex_chromosomes,
  )
  if stats['variants_kept'] == 0:
    raise InputError(_nothing_kept(source.path, stats))
  cohort_lib.write_samples(tmp, source.samples, labels, split)
  manifest = {
    'format': workdir_lib.FORMAT,
    'complete': True,
    'source': source_info,
    'inputs': inputs,
    'config': _config_dict(data_cfg),
    'seed': seed,
    'qc': {
      'hwe_test': f'exact (Wigginton et al. 2005, as plink --hardy), within '
      f'{data_cfg.qc.hwe_within}',
      'missing_fill': 'rounded mean dosage of the called genotypes, per SNP',
      'phase': 'a filled call follows its dosage (0|0, 1|0 of unknown phase, 1|1); '
      'phased only if no kept heterozygous call has unknown phase',
      'fit_on': 'train (call rate, MAF, HWE and the fill value ignore val/test)',
      'filter_order': list(qc_lib.REASONS),
      'sex_chromosomes': data_cfg.sex_chromosomes,
    },
    **stats,
    # The input header's contig lengths and reference, carried into the synthetic VCF.
    'contigs': [list(c) for c in getattr(source, 'contigs', [])],
    'reference': getattr(source, 'reference', None),
    'split': split_from,
    'classes': sorted(set(labels.tolist())),
    'samples': splits_lib.counts(labels, split),
    'wall_time_s': round(time.time() - start, 3),
  }
  text = json.dumps(manifest, indent=1)
  with open(os.path.join(tmp, cohort_lib.MANIFEST_FILE), 'w') as f:
    f.write(text)
  return json.loads(text)


def _qc_groups(qc_cfg, labels: np.ndarray, split: np.ndarray) -> np.ndarray:
  """HWE test groups of the samples; -1 (left out of QC statistics) for val and test."""
  groups = np.asarray(HWE_WITHIN[qc_cfg.hwe_within](labels)).astype(np.int64)
  groups[split != 'train'] = -1
  return groups


def _nonzero(d: dict) -> str:
  return ', '.join(f'{k} {v}' for k, v in d.items() if v) or 'nothing'


def _nothing_kept(path: str, stats: dict) -> str:
  """Why no variant is left, for the error line (each cause its own true message)."""
  read, dropped = stats['variants_read'], stats['dropped']
  if read == 0:
    return f'{path}: no variant records (only a header)'
  if dropped['sex_chromosome'] == read:
    return (
      f'{path}: all {read} variants are on X, Y or MT, which data.sex_chromosomes=drop '
      f'drops; set data.sex_chromosomes=diploid to keep them'
    )
  if sum(dropped[r] for r in qc_lib.STRUCTURAL) == read:
    return f'{path}: no biallelic SNP among the {read} variants (dropped {_nonzero(dropped)})'
  return (
    f'{path}: no variant left after QC ({read} read, dropped {_nonzero(dropped)}); '
    f'check the file or relax data.qc.min_maf / min_call_rate / min_hwe_p'
  )
