"""A notebook's handle on a finished workdir: load the fitted generator and draw people.

  import gdiff.api
  model = gdiff.api.load('runs/kg1')           # a workdir whose train stage finished
  dosage, labels = model.sample(100, seed=1)  # (100, S) int8 ALT counts, (100,) class names
  model.variants                               # the SNP table: chrom, pos, id, ref, alt
  model.classes                                # the label's classes

The `ar` generator only (the default); sample a diffusion workdir with `--mode=sample`.
Drawing here writes nothing and does not touch `W/samples/`. A person is a function of
(seed, row) alone, as in the sample stage: the same call gives the same people.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from gdiff import distributed, rng
from gdiff import sample as sample_lib
from gdiff import workdir as wd
from gdiff.ar import stage as ar_stage
from gdiff.data import cohort as cohort_lib
from gdiff.errors import InputError


@dataclasses.dataclass
class Model:
  """A fitted generator and what it was fit on (see the module docstring)."""

  workdir: str
  params: dict
  unit: str  # 'haplotype' or 'genotype'
  classes: tuple[str, ...]
  variants: cohort_lib.Variants
  train_counts: np.ndarray  # (K,) people per class in the train split
  mesh: jax.sharding.Mesh
  run_seed: int  # the workdir's global `seed` (with `sample.seed`, what the stage drew with)

  def sample(
    self,
    n: int,
    labels: dict[str, int] | None = None,
    seed: int = 0,
    temperature: float = 1.0,
    batch_size: int = 1024,
  ) -> tuple[np.ndarray, np.ndarray]:
    """Draws synthetic people.

    Args:
      n: how many (ignored when `labels` is given).
      labels: people per class name, e.g. {'case': 50, 'control': 50}; default: n in the
        train split's class proportions.
      seed: the sampling seed, as `sample.seed` (labels are shuffled with it too): with the
        train split's size and proportions, seed 0 gives the people of W/samples/.
      temperature: divides the logits (1: the fitted model).
      batch_size: people drawn at once.

    Returns:
      (dosage (N, S) int8 ALT counts, label names (N,)).
    """
    if labels is None:
      counts = sample_lib.proportional_counts(int(n), self.train_counts)
      labels = dict(zip(self.classes, counts.tolist()))
    unknown = sorted(set(labels) - set(self.classes))
    if unknown:
      raise InputError(f'labels {unknown}: not classes of this model {list(self.classes)}')
    if not temperature > 0:
      raise InputError(f'temperature={temperature!r}: must be > 0')
    label_ids = sample_lib.draw_labels(
      labels, self.classes, rng.numpy_stream(self.run_seed, 'sample_labels', seed)
    )
    key = rng.stream(self.run_seed, 'sample', seed)
    batches = ar_stage.draw(
      self.params,
      self.unit,
      label_ids,
      key,
      temperature=temperature,
      batch_size=batch_size,
      mesh=self.mesh,
    )
    out = [dosage for _, dosage, _ in batches]
    dosage = np.concatenate(out) if out else np.zeros((0, len(self.variants)), np.int8)
    return dosage, np.asarray(self.classes)[label_ids]


def load(workdir: str) -> Model:
  """The fitted generator of `workdir` (its train stage finished with generator 'ar')."""
  record = wd.read_record(workdir, 'train')
  if record is None:
    raise InputError(f'{workdir}: no finished train stage; run --mode=train first')
  generator = record['sections'].get('generator')
  if generator != 'ar':
    raise InputError(
      f'{workdir}: generator {generator!r}: gdiff.api draws from the ar generator only; '
      'sample the diffusion generator with --mode=sample'
    )
  mesh = distributed.make_mesh(jax.local_devices())
  params, summary = ar_stage.load(workdir, mesh)
  cohort = cohort_lib.load_cohort(wd.Layout(workdir).data)
  train_ids = cohort.label_ids[cohort.indices('train')]
  return Model(
    workdir=workdir,
    params=params,
    unit=summary['unit'],
    classes=tuple(cohort.classes),
    variants=cohort.variants(),
    train_counts=np.bincount(train_ids, minlength=len(cohort.classes)),
    mesh=mesh,
    run_seed=int(record['sections'].get('seed', 0)),
  )


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
