"""A notebook's handle on a finished workdir: load the fitted generator, draw and write people.

  import gdiff
  model = gdiff.load('runs/kg1')                     # a workdir whose train stage finished
  dosage, labels = model.sample(100, seed=1)         # (100, S) int8 ALT counts, (100,) names
  dosage, labels = model.sample(class_counts={'CHB': 50, 'JPT': 50}, seed=2)
  model.write('out/chb_jpt', dosage, labels)         # out/chb_jpt.vcf.gz(.tbi), .bed/.bim/.fam, .h5
  model.variants, model.classes                      # the SNP table; the label's classes

Both generators: `ar` (the parameters are loaded once and kept) and `diffusion` (each
call runs the sample stage's own `gdiff.sample.diffusion_rows`: checkpoint, sampler,
codec and decode, into a temporary HDF5 file). The run's settings come from the
workdir's stage records (the whole resolved config; the sample record's when W/samples/
exists), so `model.sample` with the sample stage's size and `sample.seed` gives exactly
the people of W/samples/. A person is a function of (seed, row) alone: the same call
gives the same people. The release gate (`gdiff.privacy.gate`, `sample.gate.*`) screens the
drawn people against the training people and redraws the flagged ones as the stage does
(`sample(..., gate=False)` skips it). Drawing writes nothing; `write` writes the files the
sample stage writes, with the same provenance header lines (phased when `dosage` is the
array the last `sample` returned from a haplotype model).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import tempfile
from collections.abc import Sequence

import jax
import ml_collections
import numpy as np

from gdiff import distributed, export, rng
from gdiff import sample as sample_lib
from gdiff import workdir as wd
from gdiff.data import cohort as cohort_lib
from gdiff.errors import InputError
from gdiff.privacy import gate as gate_lib

WRITE_FORMATS = ('vcf', 'plink', 'h5')  # `Model.write`'s default (export.FORMATS: any of them)


@dataclasses.dataclass
class _Draw:
  dosage: np.ndarray
  hap0: np.ndarray | None
  manifest: dict
  config: ml_collections.ConfigDict


@dataclasses.dataclass
class _Rows:
  """Drawn rows by name ('dosage', 'hap0', 'emb'), as `gate.apply` reads and replaces them."""

  file: dict


@dataclasses.dataclass
class Model:
  """A fitted generator and what it was fit on (see the module docstring)."""

  workdir: str
  config: ml_collections.ConfigDict  # the run's resolved config (from its stage records)
  classes: tuple[str, ...]
  variants: cohort_lib.Variants
  train_counts: np.ndarray  # (K,) people per class in the train split
  contigs: list  # (name, length) of the input, for the VCF header
  reference: str | None  # the input's ##reference
  ar: dict | None = None  # generator 'ar': params, unit, mesh (loaded once)
  _gate: gate_lib.Reference | None = dataclasses.field(default=None, repr=False)
  _last: _Draw | None = dataclasses.field(default=None, repr=False)

  @property
  def generator(self) -> str:
    return self.config.generator

  @property
  def unit(self) -> str:
    """'haplotype' or 'genotype' (ar); 'genotype' (diffusion)."""
    return self.ar['unit'] if self.ar else 'genotype'

  def sample(
    self,
    n: int = 0,
    class_counts: dict[str, int] | None = None,
    seed: int = 0,
    *,
    temperature: float = 1.0,
    batch_size: int | None = None,
    gate: bool | None = None,
  ) -> tuple[np.ndarray, np.ndarray]:
    """Draws synthetic people.

    Args:
      n: how many, in the train split's class proportions (ignored with `class_counts`).
      class_counts: people per class name, e.g. {'case': 50, 'control': 50}.
      seed: the sampling seed, as `sample.seed` (labels are shuffled with it too): with the
        sample stage's size and proportions, its `sample.seed` gives the people of W/samples/.
      temperature: generator 'ar' only: divides the logits (1: the fitted model).
      batch_size: people drawn at once (default: the run's `sample.batch_size`).
      gate: screen the people with the release gate and redraw the flagged ones (default:
        the run's `sample.gate.enabled`); its counts are in the `write` manifest.

    Returns:
      (dosage (N, S) int8 ALT counts, label names (N,)).
    """
    counts = self._counts(n, class_counts)
    if int(seed) < 0:
      raise InputError(f'seed={seed!r}: must be >= 0')
    if not temperature > 0:
      raise InputError(f'temperature={temperature!r}: must be > 0')
    if self.generator != 'ar' and temperature != 1.0:
      raise InputError(f'temperature={temperature!r}: the {self.generator} generator has none')
    batch = int(batch_size or self.config.sample.batch_size)
    if batch < 1:
      raise InputError(f'batch_size={batch_size!r}: must be >= 1')
    config = copy.deepcopy(self.config)
    with config.unlocked():
      config.sample.seed = int(seed)
      config.sample.temperature = float(temperature)
      config.sample.batch_size = batch
      config.sample.class_counts = ','.join(f'{c}:{k}' for c, k in counts.items())
    label_ids = sample_lib.draw_labels(
      counts, self.classes, rng.numpy_stream(config.seed, 'sample_labels', config.sample.seed)
    )
    draw = DRAWS[self.generator]
    rows = draw(self, config, label_ids)
    manifest = rows.file.pop('manifest')
    if config.sample.gate.enabled if gate is None else gate:
      manifest['gate'] = gate_lib.apply(
        gate_lib.GateConfig.from_config(config.sample.gate),
        self._gate_reference(),
        rows,
        label_ids,
        lambda label_ids_M, first_id: draw(
          self, config, label_ids_M, first_id, rows.file.get('emb'), keep_manifest=False
        ),
      )
    dosage, hap0 = rows.file['dosage'], rows.file.get('hap0')
    self._last = _Draw(dosage, hap0, manifest, config)
    return dosage, np.asarray(self.classes)[label_ids]

  def _gate_reference(self) -> gate_lib.Reference:
    """The gate's thresholds from train and val (computed once)."""
    if self._gate is None:
      cohort = cohort_lib.load_cohort(wd.Layout(self.workdir).data)
      self._gate = gate_lib.make_reference(
        cohort.dosages('train'),
        cohort.dosages('val'),
        gate_lib.GateConfig.from_config(self.config.sample.gate),
        self.variants.chrom,
        self.variants.pos,
      )
    return self._gate

  def _counts(self, n, class_counts) -> dict[str, int]:
    if class_counts is None:
      if int(n) < 0:
        raise InputError(f'n={n!r}: must be >= 0')
      counts = sample_lib.proportional_counts(int(n), self.train_counts)
      return dict(zip(self.classes, counts.tolist()))
    unknown = sorted(set(class_counts) - set(self.classes))
    if unknown:
      raise InputError(f'class_counts {unknown}: not classes of this model {list(self.classes)}')
    bad = {c: k for c, k in class_counts.items() if int(k) < 0}
    if bad:
      raise InputError(f'class_counts {bad}: counts must be >= 0')
    return {c: int(class_counts.get(c, 0)) for c in self.classes}

  def write(
    self,
    prefix: str,
    dosage: np.ndarray,
    labels: Sequence[str],
    formats: Sequence[str] = WRITE_FORMATS,
  ) -> list[str]:
    """Writes a drawn cohort as the sample stage does (`gdiff.export.write_cohort`).

    Args:
      prefix: path stem: PREFIX.vcf.gz (+ .tbi), PREFIX.bed/.bim/.fam, PREFIX.h5, and
        with 'labels' PREFIX.labels.tsv and PREFIX.pheno.tsv.
      dosage: (N, S) ALT counts, e.g. from `sample`.
      labels: (N,) class names.
      formats: any of 'vcf', 'plink', 'h5', 'labels'.

    Returns:
      The paths written.
    """
    unknown = [f for f in formats if f not in export.FORMATS]
    if unknown:
      raise InputError(f'formats {unknown}: unknown; known: {", ".join(export.FORMATS)}')
    dosage = np.asarray(dosage)
    labels = np.asarray(labels).astype(str)
    if dosage.ndim != 2 or dosage.shape[1] != len(self.variants):
      raise InputError(f'dosage of shape {dosage.shape}: expected (N, {len(self.variants)})')
    if len(labels) != len(dosage):
      raise InputError(f'{len(labels)} labels for {len(dosage)} people')
    unknown = sorted(set(labels.tolist()) - set(self.classes))
    if unknown:
      raise InputError(f'labels {unknown}: not classes of this model {list(self.classes)}')
    last = self._last
    drawn = last is not None and last.dosage is dosage
    directory, stem = os.path.split(prefix)
    if not stem:
      raise InputError(f'prefix {prefix!r}: needs a file name stem')
    config = last.config if drawn else self.config
    manifest = last.manifest if drawn else {'generator': self.generator}
    return export.write_cohort(
      directory or '.',
      dosage.astype(np.int8),
      self.variants,
      export.sample_ids(len(dosage)),
      labels,
      self.classes,
      hap0_NxS=last.hap0 if drawn else None,
      prefix=stem,
      formats=tuple(formats),
      vcf_header_lines=sample_lib.provenance(config, manifest, self.reference),
      vcf_contigs=self.contigs,
    )


# ------------------------------------------------------------------ per generator


def _load_ar(model: Model) -> dict:
  from gdiff.ar import stage as ar_stage

  mesh = distributed.make_mesh(jax.local_devices())
  params, summary = ar_stage.load(model.workdir, mesh)
  return {'params': params, 'unit': summary['unit'], 'mesh': mesh, 'summary': summary}


def _draw_ar(model: Model, config, label_ids_N, first_id=0, calibration=None, keep_manifest=True):
  """The ar stage's `draw` on the parameters loaded once (its `fill_rows` reloads them):
  people first_id.. as `_Rows` ('dosage', 'hap0' for haplotypes, 'manifest')."""
  del calibration
  from gdiff.ar import stage as ar_stage

  batches = ar_stage.draw(
    model.ar['params'],
    model.ar['unit'],
    label_ids_N,
    rng.stream(config.seed, 'sample', config.sample.seed),
    temperature=float(config.sample.temperature),
    batch_size=int(config.sample.batch_size),
    mesh=model.ar['mesh'],
    first_id=first_id,
  )
  dosage = np.zeros((len(label_ids_N), len(model.variants)), np.int8)
  hap0 = np.zeros_like(dosage) if model.ar['unit'] == 'haplotype' else None
  for lo, dosage_BxS, hap0_BxS in batches:
    dosage[lo : lo + len(dosage_BxS)] = dosage_BxS
    if hap0 is not None:
      hap0[lo : lo + len(hap0_BxS)] = hap0_BxS
  summary = model.ar['summary']
  manifest = {
    'generator': 'ar',
    'unit': summary['unit'],
    'context_snps': summary['context_snps'],
    'temperature': float(config.sample.temperature),
    'seed': int(config.sample.seed),
  }
  file = {'dosage': dosage, 'hap0': hap0} if hap0 is not None else {'dosage': dosage}
  return _Rows({**file, 'manifest': manifest} if keep_manifest else file)


def _draw_with_stage(
  model: Model, config, label_ids_N, first_id=0, calibration=None, keep_manifest=True
):
  """The sample stage's own row filler (`generators.Generator.fill_rows`) into a temporary
  HDF5 file, read back: checkpoint, sampler, codec and decode exactly as the stage runs them
  (people first_id.., decode thresholds fit on `calibration` embeddings when given)."""
  from gdiff import generators

  generator = generators.get(config)
  n, s = len(label_ids_N), len(model.variants)
  with tempfile.TemporaryDirectory(prefix='gdiff-api-') as tmp:
    with export.H5Cohort(
      os.path.join(tmp, 'rows.h5'),
      n,
      s,
      generator.embedding_shape(config, model.workdir),
      model.classes,
      phased=False,
    ) as h5:
      manifest = {}
      if n:
        manifest = generator.fill_rows(
          config, model.workdir, h5, label_ids_N, first_id=first_id, calibration=calibration
        )
      file = {name: h5.file[name][()] for name in ('dosage', 'emb') if name in h5.file}
  return _Rows({**file, 'manifest': manifest} if keep_manifest else file)


LOADERS = {'ar': _load_ar, 'diffusion': lambda model: None}
DRAWS = {'ar': _draw_ar, 'diffusion': _draw_with_stage}


# ------------------------------------------------------------------ loading


def _overlay(node: ml_collections.ConfigDict, values: dict) -> None:
  for key, value in values.items():
    if isinstance(value, dict) and isinstance(node.get(key), ml_collections.ConfigDict):
      _overlay(node[key], value)
    else:
      node[key] = tuple(value) if isinstance(value, list) else value


def run_config(workdir: str) -> ml_collections.ConfigDict:
  """The config `workdir` was run with: the sample record's (the one W/samples/ was drawn
  with) when there is one, else the train record's.

  Records of a gdiff before records held the whole config: their sections over the
  defaults of configs/base.py.
  """
  train = wd.read_record(workdir, 'train')
  if train is None:
    raise InputError(f'{workdir}: no finished train stage; run --mode=train first')
  record = wd.read_record(workdir, 'sample')
  if record is None or record['sections'].get('generator') != train['sections'].get('generator'):
    record = train
  config = ml_collections.ConfigDict()
  if 'config' not in record:
    from configs import base  # the defaults the sections were taken from

    config = base.get_config()
  _overlay(config, record.get('config') or record['sections'])
  return config


def load(workdir: str) -> Model:
  """The fitted generator of `workdir` (its train stage finished), ready to `sample`."""
  config = run_config(workdir)
  generator = config.get('generator')
  if generator not in DRAWS:
    raise InputError(
      f'{workdir}: generator {generator!r}: gdiff.load knows {", ".join(sorted(DRAWS))}'
    )
  layout = wd.Layout(workdir)
  cohort = cohort_lib.load_cohort(layout.data)
  train_ids = cohort.label_ids[cohort.indices('train')]
  contigs, reference = cohort.input_header()
  model = Model(
    workdir=workdir,
    config=config,
    classes=tuple(cohort.classes),
    variants=cohort.variants(),
    train_counts=np.bincount(train_ids, minlength=len(cohort.classes)),
    contigs=list(contigs),
    reference=reference,
  )
  model.ar = LOADERS[generator](model)
  return model


def evaluate(real: str, synthetic: str, out: str, labels: str | None = None) -> dict:
  """Scores any synthetic cohort file against a finished workdir's real cohort.

  The evaluate stage's report (metrics.json, report.md, report.html, figures) for
  `synthetic`, a VCF (another tool's output; SNPs matched by chrom, pos, ref, alt) or a
  gdiff .h5, written to `out`. See `gdiff.evaluate.external`.

  Args:
    real: a workdir whose prepare stage finished.
    synthetic: the cohort file judged.
    out: the report folder.
    labels: for a VCF, a TSV `sample<TAB>label` (default `<prefix>.labels.tsv`).

  Returns:
    The metrics dict written to out/metrics.json.
  """
  from gdiff.evaluate import external

  return external.evaluate_file(real, synthetic, out, labels=labels)
