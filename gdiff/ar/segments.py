"""Genome scale by segments: the ar model fit as independent jobs, one per segment.

Each SNP's regression only sees the k SNPs before it on its chromosome
(`gdiff.ar.model`), so the genome can be cut into segments fit by separate
processes (a local pool, a SLURM array: launch/segments_*.sh) with no coupling
but the class label and the ancestry code. `ar.segments` says how:

  'genome'      one segment: today's single fit in W/checkpoints/ar (the default)
  'chromosome'  one segment per chromosome, named chr<CHROM>
  '<N>'         (a SNP count, as a string) pieces of N SNPs rounded up to a whole
                number of `ar.block_snps`, cut at the whole genome's block
                boundaries, named snps<LO>-<HI>; a piece that starts inside a
                chromosome also fits the whole blocks before it that hold its
                first SNPs' context (then drops them), so its fit equals the
                one-segment fit SNP for SNP (same blocks, same data)

Each segment chooses its own context length on val (val log-likelihood of its own
SNPs) and is written to W/checkpoints/ar/segments/<name>/ (orbax params + fit.json,
its done-record, with the train config it was fit under); a re-run skips segments
already done under the same config (resume). With `ar.ancestry_pcs` > 0 the code is
fit once genome-wide, before any segment (W/checkpoints/ar/ancestry.npz), and every
segment conditions on it. The train stage, once every segment is done, writes
W/checkpoints/ar/fit.json listing them.

Sampling (`gdiff.ar.stage.draw`) walks the segments in genome order for each batch
of people: a segment draws with its own model from the slice of the person's
whole-genome uniforms (`gdiff.ar.sampler.uniforms`) and starts from the states the
previous segment ended with, so a person's draws do not depend on how the genome
was cut: with equal models, segmented == unsegmented byte for byte.

`GDIFF_FAIL_SEGMENT=<name>` makes that segment's fit fail after fitting, before it
is recorded (fault injection for the resume tests).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re

import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from gdiff import workdir as wd
from gdiff.ar import fit as fit_lib
from gdiff.ar import model as model_lib
from gdiff.data import cohort as cohort_lib
from gdiff.errors import InputError

GENOME = 'genome'
CHROMOSOME = 'chromosome'
FOLDER = 'segments'  # under W/checkpoints/ar
LIST_FILE = 'segments.txt'  # the plan's names, one a line (array jobs index it)
ANCESTRY_FILE = 'ancestry.npz'
FAIL_ENV = 'GDIFF_FAIL_SEGMENT'


@dataclasses.dataclass(frozen=True)
class Segment:
  """SNPs [lo, hi) of the genome; `lead` SNPs before lo are fit as context only."""

  name: str
  lo: int
  hi: int
  lead: int = 0


def mode(ar_cfg: ml_collections.ConfigDict) -> str | int:
  """'genome', 'chromosome' or a SNP count (InputError naming the option otherwise)."""
  value = ar_cfg.segments
  if value in (GENOME, CHROMOSOME):
    return value
  text = str(value).strip()
  if text.isdigit() and int(text) >= 1:
    return int(text)
  raise InputError(
    f"config ar.segments={value!r}: use 'genome', 'chromosome' or a SNP count such as '20000'"
  )


def segmented(ar_cfg: ml_collections.ConfigDict) -> bool:
  """Whether the config cuts the genome (anything but one 'genome' segment)."""
  return mode(ar_cfg) != GENOME


def plan(ar_cfg: ml_collections.ConfigDict, chrom_S: np.ndarray, max_context: int) -> list[Segment]:
  """The segments of a genome whose SNPs lie on `chrom_S` (see the module docstring)."""
  chrom_S = np.asarray(chrom_S)
  s = len(chrom_S)
  how = mode(ar_cfg)
  if how == GENOME:
    return [Segment(GENOME, 0, s)]
  if how == CHROMOSOME:
    starts = [0, *np.flatnonzero(chrom_S[1:] != chrom_S[:-1]) + 1]
    stops = [*starts[1:], s]
    names = [f'chr{_safe(chrom_S[lo])}' for lo in starts]
    if len(set(names)) < len(names):
      raise InputError(
        "config ar.segments='chromosome': a chromosome's SNPs are not contiguous in the cohort"
      )
    return [Segment(n, int(lo), int(hi)) for n, lo, hi in zip(names, starts, stops)]
  block = max(1, int(ar_cfg.block_snps))
  size = -(-how // block) * block
  lead_blocks = -(-int(max_context) // block) * block
  out = []
  for lo in range(0, s, size):
    hi = min(lo + size, s)
    lead = min(lead_blocks, lo) if lo and chrom_S[lo - 1] == chrom_S[lo] else 0
    out.append(Segment(f'snps{lo}-{hi}', lo, hi, lead))
  return out


def _safe(chrom) -> str:
  return re.sub(r'[^A-Za-z0-9_.-]', '_', str(chrom))


def folder(workdir: str) -> str:
  return os.path.join(wd.Layout(workdir).checkpoints, 'ar', FOLDER)


def _record(workdir: str, name: str) -> dict | None:
  path = os.path.join(folder(workdir), name, 'fit.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def is_done(config: ml_collections.ConfigDict, workdir: str, name: str) -> bool:
  """The segment has a done-record written under this train config."""
  record = _record(workdir, name)
  return record is not None and record.get('sections') == wd.sections(config, 'train')


class Data:
  """The train/val sequences, their classes and ancestry codes, shared by the segment fits."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    from gdiff.ar import stage  # stage imports this module

    layout = wd.Layout(workdir)
    cohort = cohort_lib.load_cohort(layout.data)
    self.unit = stage.resolve_unit(config.ar, cohort)
    self.classes = list(cohort.classes)
    self.chrom = cohort.variants().chrom
    self.x, self.y = stage.sequences(cohort, 'train', self.unit)
    self.x_val, self.y_val = stage.sequences(cohort, 'val', self.unit)
    if len(self.x) < 2:
      raise InputError(f'{layout.data}: the train split has {len(self.x)} sequences')
    self.codes = shared_ancestry(config, workdir, cohort, self.unit)
    self.segments = plan(config.ar, self.chrom, max(stage.context_lengths(config.ar)))


def shared_ancestry(config, workdir: str, cohort, unit: str) -> dict:
  """The ancestry codes (`stage.ancestry_codes`), fit once genome-wide and kept in
  W/checkpoints/ar/ancestry.npz for every segment job (refit when the config changed)."""
  from gdiff.ar import stage

  pcs = int(config.ar.ancestry_pcs)
  if pcs <= 0:
    return stage.ancestry_codes(cohort, unit, 0)
  path = os.path.join(wd.Layout(workdir).checkpoints, 'ar', ANCESTRY_FILE)
  sections = json.dumps(wd.sections(config, 'train'), sort_keys=True)
  if os.path.exists(path):
    with np.load(path) as f:
      if str(f['sections']) == sections:
        return {
          'pcs': int(f['pcs']),
          'train': f['train'],
          'val': f['val'],
          'density': {'mean': f['mean'].tolist(), 'chol': f['chol'].tolist()},
        }
  codes = stage.ancestry_codes(cohort, unit, pcs)
  tmp = f'{path}.{os.getpid()}.tmp.npz'
  np.savez(
    tmp,
    sections=sections,
    pcs=codes['pcs'],
    train=codes['train'],
    val=codes['val'],
    mean=np.asarray(codes['density']['mean'], np.float32),
    chol=np.asarray(codes['density']['chol'], np.float32),
  )
  os.replace(tmp, path)
  logging.info('ar: fit the ancestry code (%d PCs) once for all segments', codes['pcs'])
  return shared_ancestry(config, workdir, cohort, unit)  # as every other job reads it


def fit_segment(config: ml_collections.ConfigDict, workdir: str, data: Data, seg: Segment) -> dict:
  """Fits one segment (every candidate context length; val picks one) and records it."""
  from gdiff.ar import stage

  a = config.ar
  start = seg.lo - seg.lead
  cols = slice(start, seg.hi)
  chrom = data.chrom[cols]
  z, z_val = data.codes['train'], data.codes['val']
  has_val = len(data.x_val) > 0
  val = (data.x_val[:, cols], data.y_val, z_val) if has_val else None
  mesh = stage._local_mesh()
  block = int(a.block_snps)
  candidates = []
  for k in stage.context_lengths(a):
    cfg = stage.model_config(a, data.unit, len(data.classes), k, data.codes['pcs'])
    params, info = fit_lib.fit(
      cfg,
      data.x[:, cols],
      data.y,
      chrom,
      block_snps=block,
      max_iter=int(a.max_iter),
      tol=float(a.tol),
      solver=a.solver,
      val=val,
      mesh=mesh,
      z_NxP=z,
    )
    if seg.lead:  # the lead SNPs were fit only to give the first blocks their context
      if has_val:
        lead_ll = fit_lib.log_likelihood(
          cfg,
          {n: v[: seg.lead] for n, v in params.items()},
          data.x_val[:, start : seg.lo],
          data.y_val,
          data.chrom[start : seg.lo],
          z_NxP=z_val,
          block_snps=block,
          mesh=mesh,
        )
        total = info['val_log_likelihood'] * len(data.x_val) - lead_ll
        info['val_log_likelihood'] = total / len(data.x_val)
      params = {n: v[seg.lead :] for n, v in params.items()}
    candidates.append((info.get('val_log_likelihood', 0.0), k, params, info))
  _, k, params, info = max(candidates, key=lambda c: c[0]) if has_val else candidates[0]
  if os.environ.get(FAIL_ENV) == seg.name:
    raise RuntimeError(f'{FAIL_ENV}={seg.name}: injected failure of segment {seg.name}')
  record = {
    **dataclasses.asdict(seg),
    'unit': data.unit,
    'context_snps': k,
    'candidates': [{'context_snps': c[1], **c[3]} for c in candidates],
    'sections': wd.sections(config, 'train'),
  }
  with wd.replacing(os.path.join(folder(workdir), seg.name)) as tmp:
    stage.save_params(os.path.join(tmp, 'params'), params)
    with open(os.path.join(tmp, 'fit.json'), 'w') as f:
      json.dump(record, f, indent=1)
  logging.info('ar: segment %s (SNPs %d-%d) done: context %d SNPs', seg.name, seg.lo, seg.hi, k)
  return record


def claim(workdir: str) -> None:
  """Makes W/checkpoints, W/checkpoints/ar and its segments folder gdiff's."""
  checkpoints = wd.Layout(workdir).checkpoints
  for path in (checkpoints, os.path.join(checkpoints, 'ar'), folder(workdir)):
    wd.claim(path)


def write_list(workdir: str, segments: list[Segment]) -> str:
  """W/checkpoints/ar/segments.txt: the segment names in genome order (array jobs index it)."""
  path = os.path.join(wd.Layout(workdir).checkpoints, 'ar', LIST_FILE)
  tmp = f'{path}.{os.getpid()}.tmp'
  with open(tmp, 'w') as f:
    f.write(''.join(f'{s.name}\n' for s in segments))
  os.replace(tmp, path)
  return path


def train(config: ml_collections.ConfigDict, workdir: str, only: str | None = None) -> dict:
  """Fits the segments not yet done (all, or the one named `only`); with all of them done,
  writes W/checkpoints/ar/fit.json and returns the train record's entries."""
  claim(workdir)
  data = Data(config, workdir)
  names = [s.name for s in data.segments]
  if only is not None and only not in names:
    raise InputError(
      f'--segment={only}: no such segment; ar.segments={config.ar.segments!r} gives '
      f'{", ".join(names[:6])}{" ..." if len(names) > 6 else ""}'
    )
  for seg in data.segments:
    if only is not None and seg.name != only:
      continue
    if is_done(config, workdir, seg.name):
      logging.info('ar: segment %s already done; skipping', seg.name)
      continue
    logging.info('ar: fitting segment %s (SNPs %d-%d)', seg.name, seg.lo, seg.hi)
    fit_segment(config, workdir, data, seg)
  if only is not None:
    return {}
  records = [_record(workdir, name) for name in names]
  contexts = sorted({r['context_snps'] for r in records})
  summary = {
    'unit': data.unit,
    'context_snps': contexts[0] if len(contexts) == 1 else contexts,
    'num_sequences': len(data.x),
    'num_snps': int(data.x.shape[1]),
    'classes': data.classes,
    'segments': [{k: r[k] for k in ('name', 'lo', 'hi', 'lead', 'context_snps')} for r in records],
  }
  if data.codes['pcs']:
    summary['ancestry'] = {'pcs': data.codes['pcs'], **data.codes['density']}
  path = os.path.join(wd.Layout(workdir).checkpoints, 'ar', 'fit.json')
  tmp = f'{path}.{os.getpid()}.tmp'
  with open(tmp, 'w') as f:
    json.dump(summary, f, indent=1)
  os.replace(tmp, path)
  logging.info('ar: %d segments done', len(records))
  return {'ar_unit': data.unit, 'ar_context_snps': summary['context_snps']}


def load(workdir: str, summary: dict, chrom_S: np.ndarray) -> list[tuple[int, int, dict]]:
  """[(lo, hi, params with `valid`)] of every segment, in genome order (numpy arrays)."""
  out = []
  for seg in summary['segments']:
    path = os.path.abspath(os.path.join(folder(workdir), seg['name'], 'params'))
    mngr = ocp.CheckpointManager(path, options=ocp.CheckpointManagerOptions(read_only=True))
    params = mngr.restore(mngr.latest_step(), args=ocp.args.StandardRestore())
    mngr.close()
    valid = model_lib.context_valid(chrom_S, seg['context_snps'])
    params['valid'] = valid[seg['lo'] : seg['hi']]
    out.append((seg['lo'], seg['hi'], params))
  if not out or out[-1][1] != len(chrom_S):
    raise InputError(
      f'{folder(workdir)}: the segments cover {out[-1][1] if out else 0} SNPs but the cohort '
      f'has {len(chrom_S)}; rerun in a new workdir'
    )
  return out
