"""Judge any synthetic cohort file (another tool's VCF, or a gdiff .h5) against a workdir.

`evaluate_file(workdir, synthetic, out)` reads a finished workdir's real cohort and codec,
reads the synthetic file, matches its SNPs to the real ones by (chrom, pos, ref, alt)
(a 'chr' prefix is ignored; a SNP with REF and ALT swapped has its dosage flipped; extra
synthetic SNPs are dropped; a real SNP missing from the file is one clear error), and
writes the same report as the evaluate stage into `out`. Labels come from the .h5, or,
for a VCF, from a TSV `sample<TAB>label` (default: `<prefix>.labels.tsv` next to it, as
gdiff's export writes it).

The evaluate settings are the workdir's own (its evaluate record, else the defaults of
configs/base.py), so the file is judged as gdiff's cohort was.
"""

from __future__ import annotations

import json
import logging
import os

import h5py
import ml_collections
import numpy as np

from gdiff import workdir as wd
from gdiff.data import cohort as cohort_lib
from gdiff.data import splits
from gdiff.errors import InputError
from gdiff.evaluate import provenance, run

VCF_SUFFIXES = ('.vcf.gz', '.vcf.bgz', '.vcf')


def _merge(node: ml_collections.ConfigDict, values: dict) -> None:
  """Recorded values over the defaults; keys a record lacks (newer options) keep theirs."""
  for key, value in values.items():
    if isinstance(value, dict) and isinstance(node.get(key), ml_collections.ConfigDict):
      _merge(node[key], value)
    elif isinstance(value, list) and isinstance(node.get(key), tuple):
      node[key] = tuple(value)  # JSON has no tuples
    else:
      try:
        node[key] = value
      except TypeError:  # a recorded type the default does not take: keep the default
        continue


def workdir_config(workdir: str) -> ml_collections.ConfigDict:
  """configs/base.py's config with the sections the workdir's latest stage record holds."""
  from configs import base

  config = base.get_config()
  for stage in ('evaluate', 'sample', 'prepare'):
    record = wd.read_record(workdir, stage)
    if record is not None:
      _merge(config, record['sections'])
      return config
  raise InputError(f'{workdir}: no finished prepare stage; run --mode=ingest first')


def _key(chrom, pos, ref, alt) -> tuple:
  chrom = str(chrom)
  return (chrom[3:] if chrom.lower().startswith('chr') else chrom, int(pos), str(ref), str(alt))


def match_snps(real: cohort_lib.Variants, chrom, pos, ref, alt, path: str):
  """Columns of the file for each real SNP and which of them have REF/ALT swapped.

  Raises:
    InputError: a real SNP is not in the file (its count and the first one named).
  """
  index = {_key(*v): i for i, v in enumerate(zip(chrom, pos, ref, alt))}
  columns, flip, missing = [], [], []
  for v in zip(real.chrom, real.pos, real.ref, real.alt):
    key = _key(*v)
    swapped = key[:2] + (key[3], key[2])
    if key in index:
      columns.append(index[key])
      flip.append(False)
    elif swapped in index:
      columns.append(index[swapped])
      flip.append(True)
    else:
      missing.append(key)
  if missing:
    c, p, r, a = missing[0]
    raise InputError(
      f"{path}: {len(missing)} of the real cohort's {len(real)} SNPs are not in the file "
      f'(matched by chrom, pos, ref, alt), first {c}:{p} {r}>{a}'
    )
  extra = len(index) - len(set(columns))
  if extra:
    logging.info('evaluate: %s: %d SNPs not in the real cohort dropped', path, extra)
  return np.asarray(columns), np.asarray(flip)


def _read_vcf(path: str, labels_path: str | None):
  import allel

  fields = ['samples', 'variants/CHROM', 'variants/POS', 'variants/REF', 'variants/ALT']
  data = allel.read_vcf(path, fields=fields + ['calldata/GT'], alt_number=1)
  if data is None:
    raise InputError(f'{path}: no variants or samples in the VCF')
  gt = data['calldata/GT']
  dosage_NxS = np.where((gt < 0).any(-1), -1, gt.sum(-1)).T.astype(np.int8)
  if labels_path is None:
    stem = next((path[: -len(s)] for s in VCF_SUFFIXES if path.endswith(s)), path)
    labels_path = stem + '.labels.tsv'
  if not os.path.isfile(labels_path):
    raise InputError(
      f'{path}: no labels; pass labels= a TSV with columns sample, label ({labels_path} '
      'does not exist)'
    )
  samples = np.asarray(data['samples']).astype(str)
  labels = splits.read_labels(labels_path, 'label', samples, path)
  variants = tuple(data[f'variants/{k}'] for k in ('CHROM', 'POS', 'REF', 'ALT'))
  return dosage_NxS, labels, variants


def _read_h5(path: str):
  with h5py.File(path, 'r') as f:
    dosage_NxS = f['dosage'][()].astype(np.int8)
    if 'labels' in f:
      labels = f['labels'].asstr()[()]
    else:
      classes = json.loads(f.attrs['classes'])
      labels = np.asarray(classes)[f['label_ids'][()]]
    variants = None
    if 'variants/POS' in f:
      variants = tuple(
        f[f'variants/{k}'][()] if k == 'POS' else f[f'variants/{k}'].asstr()[()]
        for k in ('CHROM', 'POS', 'REF', 'ALT')
      )
  return dosage_NxS, labels, variants


def read_synthetic(path: str, real: cohort_lib.Variants, classes, labels_path=None) -> dict:
  """The file's cohort on the real SNPs, as `run.load_synthetic` returns it."""
  if not os.path.isfile(path):
    raise InputError(f'{path}: no such synthetic cohort file')
  if path.endswith(VCF_SUFFIXES):
    dosage, labels, variants = _read_vcf(path, labels_path)
  elif path.endswith(('.h5', '.hdf5')):
    dosage, labels, variants = _read_h5(path)
  else:
    raise InputError(f'{path}: not a VCF (.vcf, .vcf.gz) or gdiff .h5 file')
  if variants is None:
    if dosage.shape[1] != len(real):
      raise InputError(f'{path}: {dosage.shape[1]} SNPs, the real cohort has {len(real)}')
  else:
    columns, flip = match_snps(real, *variants, path)
    dosage = dosage[:, columns]
    dosage = np.where(flip & (dosage >= 0) & (dosage <= 2), 2 - dosage, dosage).astype(np.int8)
  if np.any((dosage < 0) | (dosage > 2)):
    raise InputError(f'{path}: missing genotypes; evaluate needs complete calls')
  unknown = sorted(set(np.asarray(labels).astype(str)) - set(classes))
  if unknown:
    raise InputError(f'{path}: labels {unknown} are not classes of the real cohort {list(classes)}')
  lookup = {c: i for i, c in enumerate(classes)}
  label_ids = np.array([lookup[y] for y in np.asarray(labels).astype(str)], np.int32)
  if len(dosage) < 2:
    raise InputError(f'{path}: fewer than 2 synthetic people')
  return {'dosage': dosage, 'label_ids': label_ids, 'emb': None}


def evaluate_file(
  workdir: str,
  synthetic: str,
  out: str,
  labels: str | None = None,
  config: ml_collections.ConfigDict | None = None,
  name: str = 'synthetic',
) -> dict:
  """The evaluate stage's report for `synthetic` against `workdir`'s real cohort, in `out`.

  Args:
    workdir: a workdir whose prepare stage finished (its real cohort and codec).
    synthetic: a VCF (.vcf / .vcf.gz) or a gdiff .h5 cohort.
    out: the report folder (created; replaced only if an earlier gdiff report).
    labels: for a VCF, the TSV `sample<TAB>label` (default `<prefix>.labels.tsv`).
    config: the config (default: `workdir_config`).
    name: the judged cohort's row name.

  Returns:
    The metrics written to out/metrics.json.
  """
  config = config or workdir_config(workdir)
  run.check_config(config.evaluate)
  cohort = cohort_lib.load_cohort(os.path.join(workdir, run.DATA_DIR))
  syn = read_synthetic(synthetic, cohort.variants(), tuple(cohort.classes), labels)
  ctx = run.load(config, workdir, synthetic=syn, name=name)
  metrics, curves, exposed = run.judge_all(
    ctx, provenance.provenance(config, workdir, synthetic), workdir
  )
  run.write(out, config, metrics, curves, exposed)
  return metrics
