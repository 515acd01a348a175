"""The release gate: no synthetic person too close to, or a relative of, a training person.

Run by the sample stage after the generator has filled the synthetic rows of the
HDF5 file and before any release file (VCF, PLINK, labels) is written
(`sample.gate.*`, on by default). Every synthetic person is compared with every
training person, blocked and jitted (`gdiff.evaluate.distances.nearest`,
`gdiff.privacy.kinship.relatives`), and dropped when

  too_close       its Hamming distance to the nearest training person is below the
                  `distance_percentile` (1st by default) of the held-out (val) people's
                  nearest-training distances: closer than almost any real non-member is;
  duplicate, first_degree, second_degree
                  its KING-robust kinship with some training person is in that degree's
                  range (`kinship.DEGREES`, up to `kinship_degree`), as plink2
                  --make-king-table would call the pair.

Each rule needs enough data to mean something: the distance rule at least
`distance_min_heldout` held-out people (a percentile of a handful of distances is
their minimum), the kinship rule at least `kinship_min_snps` autosomal SNPs
spanning `kinship_min_span_mb` (KING's ranges are genome-wide averages: on a few
Mb, unrelated people of one population share much of it IBD and read as relatives);
a rule without them is skipped, logged and said so in the manifest.

A dropped person is replaced by a fresh draw of the same class with a new person id
beyond N (ids N, N+1, ... in row order, round after round), so every synthetic person
is still a function of the config alone; replacements are screened again, for at
most `max_rounds` rounds. If more than `max_fraction` of N would be dropped, or
replacements are still flagged after the last round, the stage fails with one line
(nothing is written: W/samples is replaced only at the end).

Counts by reason, the thresholds and the reference (held-out -> train pairs per
kinship degree: real cohorts contain relatives) go into samples/manifest.json under
`gate`.
"""

from __future__ import annotations

import dataclasses
import logging

import jax
import ml_collections
import numpy as np

from gdiff.errors import InputError
from gdiff.evaluate import distances
from gdiff.privacy import kinship

TOO_CLOSE = 'too_close'
REASONS = tuple(name for name, _ in kinship.DEGREES) + (TOO_CLOSE,)  # priority order
SCREEN_ROWS = 4096  # synthetic people read from the HDF5 file per screening pass


@dataclasses.dataclass(frozen=True)
class GateConfig:
  """`sample.gate`, typed (see configs/base.py)."""

  enabled: bool
  distance_percentile: float
  distance_min_heldout: int
  kinship_degree: int
  kinship_min_snps: int
  kinship_min_span_mb: float
  max_fraction: float
  max_rounds: int
  block_size: int

  @classmethod
  def from_config(cls, gate: ml_collections.ConfigDict) -> GateConfig:
    cfg = cls(
      enabled=bool(gate.enabled),
      distance_percentile=float(gate.distance_percentile),
      distance_min_heldout=int(gate.distance_min_heldout),
      kinship_degree=int(gate.kinship_degree),
      kinship_min_snps=int(gate.kinship_min_snps),
      kinship_min_span_mb=float(gate.kinship_min_span_mb),
      max_fraction=float(gate.max_fraction),
      max_rounds=int(gate.max_rounds),
      block_size=int(gate.block_size),
    )
    checks = (
      ('distance_percentile', 0 <= cfg.distance_percentile < 100, 'in [0, 100) (0: no rule)'),
      ('distance_min_heldout', cfg.distance_min_heldout >= 1, '>= 1'),
      ('kinship_degree', 0 <= cfg.kinship_degree <= 2, '0 (no rule), 1 or 2'),
      ('kinship_min_snps', cfg.kinship_min_snps >= 0, '>= 0'),
      ('kinship_min_span_mb', cfg.kinship_min_span_mb >= 0, '>= 0'),
      ('max_fraction', 0 <= cfg.max_fraction <= 1, 'in [0, 1]'),
      ('max_rounds', cfg.max_rounds >= 1, '>= 1'),
      ('block_size', cfg.block_size >= 1, '>= 1'),
    )
    for option, ok, expected in checks:
      if not ok:
        raise InputError(f'config sample.gate.{option}={gate[option]!r}: must be {expected}')
    return cfg


@dataclasses.dataclass(frozen=True)
class Reference:
  """The training people and the thresholds every synthetic person is screened against."""

  train_NxS: np.ndarray
  kinship_snps: np.ndarray  # (S,) bool: the autosomal SNPs KING reads
  distance_threshold: float | None  # None: no distance rule
  degrees: tuple[tuple[str, float], ...]  # the kinship ranges that drop a person
  block_size: int
  summary: dict  # thresholds and held-out -> train reference, for the manifest


def make_reference(
  train_NxS: np.ndarray,
  heldout_NxS: np.ndarray,
  cfg: GateConfig,
  chrom_S: np.ndarray | None = None,
  pos_S: np.ndarray | None = None,
) -> Reference:
  """Thresholds from the held-out (val) people's distances to train, and their relatives there.

  Args:
    train_NxS, heldout_NxS: int8 dosages of the train and held-out (val) people.
    cfg: the gate's settings.
    chrom_S, pos_S: the SNPs' chromosomes and positions: KING reads the autosomes and
      needs them to span `kinship_min_span_mb` (default: every SNP, span not checked).
  """
  train_NxS, heldout_NxS = np.asarray(train_NxS, np.int8), np.asarray(heldout_NxS, np.int8)
  if chrom_S is None:
    autosomal_S, span_mb = np.ones(train_NxS.shape[1], bool), None
  else:
    autosomal_S = kinship.autosomal(chrom_S)
    span_mb = kinship.span_mb(np.asarray(chrom_S)[autosomal_S], np.asarray(pos_S)[autosomal_S])
  num_snps = int(np.sum(autosomal_S))
  summary = {'num_train': len(train_NxS), 'num_heldout': len(heldout_NxS)}
  summary['kinship_span_mb'] = span_mb
  threshold = None
  if not cfg.distance_percentile:
    summary['distance_rule'] = 'off'
  elif len(heldout_NxS) < cfg.distance_min_heldout:
    summary['distance_rule'] = (
      f'skipped: {len(heldout_NxS)} held-out (val) people < '
      f'sample.gate.distance_min_heldout={cfg.distance_min_heldout}'
    )
  else:
    d = distances.nearest(heldout_NxS, train_NxS, 'hamming', 1, cfg.block_size)[0][:, 0]
    threshold = float(np.percentile(d, cfg.distance_percentile))
    summary['heldout_distance_median'] = float(np.median(d))
    summary['distance_rule'] = (
      f'Hamming distance < {threshold:g} (p{cfg.distance_percentile:g} of held-out -> train)'
    )
  summary['distance_threshold'] = threshold
  degrees = kinship.DEGREES[: cfg.kinship_degree + 1] if cfg.kinship_degree else ()
  if degrees and num_snps < cfg.kinship_min_snps:
    summary['kinship_rule'] = (
      f'skipped: {num_snps} autosomal SNPs < sample.gate.kinship_min_snps={cfg.kinship_min_snps}'
    )
    degrees = ()
  elif degrees and span_mb is not None and span_mb < cfg.kinship_min_span_mb:
    summary['kinship_rule'] = (
      f'skipped: the autosomal SNPs span {span_mb:.1f} Mb < '
      f'sample.gate.kinship_min_span_mb={cfg.kinship_min_span_mb:g}'
    )
    degrees = ()
  else:
    summary['kinship_rule'] = (
      'KING-robust kinship > ' + ', '.join(f'{b:g} ({n})' for n, b in degrees) if degrees else 'off'
    )
  for rule in ('distance_rule', 'kinship_rule'):
    if summary[rule].startswith('skipped'):
      logging.warning('sample.gate: %s %s', rule.replace('_', ' '), summary[rule])
  if len(heldout_NxS):
    _, _, pairs = kinship.relatives(
      heldout_NxS[:, autosomal_S], train_NxS[:, autosomal_S], cfg.block_size
    )
    summary['heldout_train_pairs'] = {n: int(c) for (n, _), c in zip(kinship.DEGREES, pairs.sum(0))}
  return Reference(train_NxS, autosomal_S, threshold, degrees, cfg.block_size, summary)


def screen(dosage_MxS: np.ndarray, ref: Reference) -> np.ndarray:
  """The reason each synthetic person is dropped ('' when kept), (M,) str.

  The closest kinship degree wins over the distance rule when both apply.
  """
  dosage_MxS = np.asarray(dosage_MxS, np.int8)
  reasons = np.full(len(dosage_MxS), '', dtype=object)
  if not len(dosage_MxS):
    return reasons.astype(str)
  if ref.distance_threshold is not None:
    d = distances.nearest(dosage_MxS, ref.train_NxS, 'hamming', 1, ref.block_size)[0][:, 0]
    reasons[d < ref.distance_threshold] = TOO_CLOSE
  if ref.degrees:
    snps = ref.kinship_snps
    kin, _, _ = kinship.relatives(dosage_MxS[:, snps], ref.train_NxS[:, snps], ref.block_size)
    for name, bound in reversed(ref.degrees):  # the closest degree is written last
      reasons[kin > bound] = name
  return reasons.astype(str)


def _screen_file(dosage, ref: Reference) -> np.ndarray:
  """`screen` over an (N, S) HDF5 dataset, SCREEN_ROWS people at a time."""
  n = dosage.shape[0]
  parts = [screen(dosage[lo : lo + SCREEN_ROWS], ref) for lo in range(0, n, SCREEN_ROWS)]
  return np.concatenate(parts) if parts else np.zeros(0, str)


class Rows:
  """In-memory rows with the HDF5 writer's `write_rows` (and `file[name]`), for redraws."""

  def __init__(self, like: dict, num_rows: int):
    self.file = {name: np.zeros((num_rows,) + ds.shape[1:], ds.dtype) for name, ds in like.items()}

  def write_rows(self, lo, dosage_BxS, emb_BxGxC=None, hap0_BxS=None):
    for name, rows in (('dosage', dosage_BxS), ('emb', emb_BxGxC), ('hap0', hap0_BxS)):
      if rows is not None:
        self.file[name][lo : lo + len(rows)] = rows


def generator_redraw(generator, config: ml_collections.ConfigDict, workdir: str, h5):
  """`redraw(label_ids_M, first_id) -> Rows` for a `gdiff.generators.Generator`.

  The generator draws people `first_id`, `first_id + 1`, ...; a generator that
  calibrates its decoding on the cohort (diffusion, matched thresholds) calibrates
  on the cohort already in `h5`, not on the few replacements.
  """
  like = {name: h5.file[name] for name in ('dosage', 'hap0', 'emb') if name in h5.file}

  def redraw(label_ids_M: np.ndarray, first_id: int) -> Rows:
    rows = Rows(like, len(label_ids_M))
    generator.fill_rows(
      config,
      workdir,
      rows,
      label_ids_M,
      first_id=first_id,
      calibration=h5.file['emb'] if 'emb' in h5.file else None,
    )
    return rows

  return redraw


def _fail(message: str, ref: Reference | None = None) -> InputError:
  pairs = (ref.summary if ref else {}).get('heldout_train_pairs')
  reference = f' (held-out -> train pairs for reference: {_counts_text(pairs)})' if pairs else ''
  return InputError(
    f'sample.gate: {message}{reference}; nothing was written (raise sample.gate.max_fraction '
    'or max_rounds, or set sample.gate.enabled=False to release without the gate)'
  )


def apply(cfg: GateConfig, ref: Reference, h5, label_ids_N: np.ndarray, redraw) -> dict:
  """Screens the synthetic rows of `h5` and replaces every dropped person in place.

  Args:
    cfg: the gate's settings.
    ref: from `make_reference`.
    h5: the synthetic rows (`gdiff.export.H5Cohort`, or anything with `file[name]`).
    label_ids_N: the class of each row.
    redraw: `redraw(label_ids_M, first_id) -> Rows` draws people first_id, first_id + 1, ...

  Returns:
    The manifest's `gate` entry: counts by reason (first screening and all rounds), rounds,
    the thresholds and the held-out reference.
  """
  n = len(label_ids_N)
  reasons = _screen_file(h5.file['dosage'], ref)
  first = {r: int(np.sum(reasons == r)) for r in REASONS}
  dropped = dict(first)
  pending = np.flatnonzero(reasons != '')
  limit = cfg.max_fraction * n
  next_id, rounds = n, 0
  while len(pending):
    total = sum(dropped.values())
    if total > limit:
      raise _fail(
        f'{total} of {n} synthetic people would be dropped ({_counts_text(dropped)}), more than '
        f'max_fraction={cfg.max_fraction:g}',
        ref,
      )
    if rounds == cfg.max_rounds:
      raise _fail(f'{len(pending)} replacements still flagged after max_rounds={cfg.max_rounds}')
    rounds += 1
    rows = redraw(np.asarray(label_ids_N)[pending], next_id)
    logging.info(
      'sample.gate: round %d: %d people redrawn (ids %d..)', rounds, len(pending), next_id
    )
    next_id += len(pending)
    for name, values in rows.file.items():
      h5.file[name][pending] = values  # pending is sorted: h5py's fancy indexing
    again = screen(rows.file['dosage'], ref)
    for r in REASONS:
      dropped[r] += int(np.sum(again == r))
    pending = pending[again != '']
  summary = {
    'enabled': True,
    'dropped_first_screen': first,
    'dropped_total': dropped,
    'replaced_people': int(sum(first.values())),
    'rounds': rounds,
    'draw_ids_used': next_id,
    'max_fraction': cfg.max_fraction,
    **ref.summary,
  }
  logging.info(
    'sample.gate: %d of %d synthetic people dropped and replaced (%s), %d round(s)',
    summary['replaced_people'],
    n,
    _counts_text(first),
    rounds,
  )
  return summary


def _counts_text(counts: dict) -> str:
  return ', '.join(f'{k} {v}' for k, v in counts.items() if v) or 'none'


def run(
  config: ml_collections.ConfigDict, workdir: str, cohort, h5, label_ids_N, generator
) -> dict:
  """The sample stage's hook: the gate of `config.sample.gate` over the rows of `h5`.

  Args:
    config: the full config.
    workdir: W.
    cohort: the real cohort (`gdiff.data.cohort.Cohort`): train and val are read.
    h5: the filled synthetic rows (`gdiff.export.H5Cohort`).
    label_ids_N: the class of each row.
    generator: the `gdiff.generators.Generator` that filled them (draws replacements).

  Returns:
    The manifest's `gate` entry.
  """
  cfg = GateConfig.from_config(config.sample.gate)
  if not cfg.enabled:
    logging.warning('sample.gate.enabled=False: synthetic people are released unscreened')
    return {'enabled': False}
  ref = make_reference(
    cohort.dosages('train'),
    cohort.dosages('val'),
    cfg,
    cohort.variants().chrom,
    cohort.variants().pos,
  )
  redraw = generator_redraw(generator, config, workdir, h5)
  if jax.process_count() > 1 and config.generator == 'diffusion':
    redraw = _single_process_only(redraw)
  return apply(cfg, ref, h5, label_ids_N, redraw)


def _single_process_only(redraw):
  def refuse(*_):
    raise _fail('diffusion replacements need every process; run the sample stage on one process')

  return refuse
