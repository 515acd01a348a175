"""The sample stage: synthetic cohorts from the trained generator, exported.

`sample_and_export(config, workdir)` draws the labels in the requested counts, lets
the generator (`gdiff.generators`) fill the rows of the synthetic HDF5 file, screens
them with the release gate (`gdiff.privacy.gate`: copies, near-copies and relatives of
training people are redrawn), and streams the VCF, PLINK and label files from it into
W/samples/:

  synthetic.h5          dosage (N, S) int8, hap0 (N, S) int8 when the generator draws
                        haplotypes, emb (N, G, C) float32 as sampled (diffusion), samples,
                        labels, label_ids; attr classes (JSON)
  synthetic.vcf.gz      bgzipped VCFv4.2, phased GT when haplotypes were drawn (tabix-indexable)
  synthetic.bed/.bim/.fam   PLINK 1 binary, A1 = ALT
  synthetic.labels.tsv  sample, label
  manifest.json         the generator's settings, counts per class

The diffusion generator (`diffusion_rows`) restores the network (EMA parameters of
the best checkpoint by default), runs the sampler of `config.sample.method` batch by
batch over a 'data' mesh of all devices and decodes the embeddings with the fitted
codec. With `sample.decode_thresholds='matched'` (default) every embedding is written
first, the per-SNP decode thresholds are refit on the first `sample.calibration_people`
of them (`matched_codec`: the cohort gets the train genotype frequencies), and the
genotypes are decoded from the HDF5 file batch by batch.

Memory does not grow with N * S: each batch goes to the HDF5 file as soon as it is
drawn, and the VCF and PLINK files (variant-major: every sample of a variant in one
record) are then streamed from the HDF5 dosage one chunk column (<= 4,096 variants)
at a time. Files go to a temporary folder that replaces the cohort's folder at the end
(`gdiff.workdir.replacing`: only a folder gdiff wrote is ever replaced); `sample.out=NAME`
writes W/samples/NAME/ and leaves the other cohorts alone (`gdiff.workdir` Cohorts).
manifest.json also keeps the config's hash and the command line (argv), which the VCF
does not (it is shared; argv holds local paths).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Sequence

import h5py
import jax
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gdiff import checkpoint, diffusion, distributed, export, models, rng, sampling
from gdiff import workdir as wd
from gdiff.data import cohort as cohort_lib
from gdiff.errors import InputError

PREFIX = wd.SYNTHETIC_PREFIX


# ------------------------------------------------------------------------ labels


def parse_class_counts(spec: str, classes: tuple[str, ...] | None) -> dict[str, int]:
  """'case:100,control:200' -> {'case': 100, 'control': 200} (unnamed classes get 0).

  With `classes` None only the syntax is checked (before the cohort is known).
  """
  counts = dict.fromkeys(classes or (), 0)
  seen = set()
  for item in spec.split(','):
    label, sep, num = item.strip().rpartition(':')
    if not sep or not label or not num.strip().isdigit():
      raise InputError(
        f'config sample.class_counts={spec!r}: expected LABEL:COUNT[,...], got {item.strip()!r}'
      )
    if classes is not None and label not in counts:
      raise InputError(
        f'config sample.class_counts={spec!r}: unknown class {label!r}; classes: {list(classes)}'
      )
    if label in seen:
      raise InputError(f'config sample.class_counts={spec!r}: class {label!r} given twice')
    seen.add(label)
    counts[label] = int(num)
  if not sum(counts.values()):
    raise InputError(f'config sample.class_counts={spec!r}: asks for no samples')
  return counts


def proportional_counts(num: int, reference_K: np.ndarray) -> np.ndarray:
  """`num` split in proportion to `reference_K` by largest remainders (exact total)."""
  reference_K = np.asarray(reference_K, np.int64)
  quota = num * reference_K / reference_K.sum()
  counts = np.floor(quota).astype(np.int64)
  order = np.argsort(-(quota - counts), kind='stable')  # ties: class order
  counts[order[: num - counts.sum()]] += 1
  return counts


OUT_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_-]*')  # sample.out: one folder under W/samples


def check_config(sample_cfg: ml_collections.ConfigDict) -> None:
  """Refuses bad `sample` options that need no cohort to judge (before any stage runs)."""
  for option, low in (('num', 0), ('seed', 0), ('batch_size', 1)):
    if int(sample_cfg[option]) < low:
      raise InputError(f'config sample.{option}={sample_cfg[option]!r}: must be >= {low}')
  if sample_cfg.class_counts:
    parse_class_counts(sample_cfg.class_counts, None)
  if sample_cfg.out and not OUT_NAME.fullmatch(sample_cfg.out):
    raise InputError(
      f'config sample.out={sample_cfg.out!r}: a cohort name of letters, digits, _ and - '
      "(W/samples/NAME/; '' for W/samples/)"
    )


def class_counts(
  sample_cfg: ml_collections.ConfigDict, cohort: cohort_lib.Cohort
) -> dict[str, int]:
  """Samples per class: `class_counts`, else `num` (0: the train size) in train proportions."""
  if sample_cfg.class_counts:
    return parse_class_counts(sample_cfg.class_counts, cohort.classes)
  if sample_cfg.num < 0:
    raise InputError(f'config sample.num={sample_cfg.num}: must be >= 0')
  train_ids = cohort.label_ids[cohort.indices('train')]
  train_K = np.bincount(train_ids, minlength=len(cohort.classes))
  num = int(sample_cfg.num) or int(train_K.sum())
  return dict(zip(cohort.classes, proportional_counts(num, train_K).tolist()))


def draw_labels(counts: dict[str, int], classes: tuple[str, ...], seed) -> np.ndarray:
  """Label ids (N,) int32 with exactly `counts` per class, in a seeded random order."""
  lookup = {c: i for i, c in enumerate(classes)}
  ids = np.concatenate([np.full(n, lookup[c], np.int32) for c, n in counts.items()])
  return np.random.default_rng(seed).permutation(ids).astype(np.int32)


# ----------------------------------------------------------------------- sampling


def _to_host(x: jax.Array) -> np.ndarray:
  if x.is_fully_addressable:
    return np.asarray(x)
  from jax.experimental import multihost_utils

  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def generate(
  sample_fn: Callable,
  decode_fn: Callable,
  label_ids_N: np.ndarray,
  batch_size: int,
  mesh: jax.sharding.Mesh,
  sink: Callable[[int, np.ndarray, np.ndarray], None],
  first_id: int = 0,
) -> None:
  """Samples N people in padded batches sharded on 'data', decoding each batch.

  The next batch is dispatched before the current one is pulled to the host, so
  decoding and writing overlap with sampling.

  Args:
    sample_fn: `sample_fn(label_B, sample_ids_B) -> emb_BxGxC` (jax arrays on `mesh`).
    decode_fn: host `decode_fn(emb_BxGxC) -> dosage_BxS` int8 (or None: no decoding).
    label_ids_N: labels of all N samples.
    batch_size: rows per batch (rounded up to a multiple of the device count).
    mesh: a mesh with a 'data' axis.
    sink: `sink(first_row, dosage_bxS or None, emb_bxGxC)` for the b <= batch_size real rows.
    first_id: the sample id of row 0 (row i draws the noise of id first_id + i).
  """
  n = len(label_ids_N)
  devices = mesh.devices.size
  batch = min(batch_size, n)
  batch = math.ceil(batch / devices) * devices
  sharding = NamedSharding(mesh, P('data'))

  def dispatch(lo):
    ids = np.arange(first_id + lo, first_id + lo + batch, dtype=np.int32)
    labels = np.zeros(batch, np.int32)
    real = min(batch, n - lo)
    labels[:real] = label_ids_N[lo : lo + real]  # padded rows: label 0, discarded
    put = lambda a: jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])
    return lo, real, sample_fn(put(labels), put(ids))

  starts = range(0, n, batch)
  report_every = max(1, len(starts) // 10)
  start_time = time.perf_counter()
  pending = dispatch(starts[0]) if n else None
  for i, nxt in enumerate(list(starts[1:]) + [None]):
    lo, real, emb = pending
    pending = dispatch(nxt) if nxt is not None else None
    emb_BxGxC = _to_host(emb)[:real]
    dosage_BxS = decode_fn(emb_BxGxC)
    sink(lo, None if dosage_BxS is None else np.asarray(dosage_BxS, np.int8), emb_BxGxC)
    if (i + 1) % report_every == 0 or nxt is None:
      seconds = time.perf_counter() - start_time
      logging.info(
        'sample: %d / %d people, %.1f people/s (first batch includes compiling)',
        lo + real,
        n,
        (lo + real) / seconds,
      )


def sample_key(config: ml_collections.ConfigDict) -> jax.Array:
  return rng.stream(config.seed, 'sample', config.sample.seed)


def sampler_settings(config: ml_collections.ConfigDict) -> dict:
  """Validated keyword arguments for `sampling.make_sampler` from `config.sample`."""
  sm, num_steps = config.sample, config.diffusion.num_steps
  if sm.method not in sampling.SAMPLERS:
    raise InputError(
      f'config sample.method={sm.method!r} is unknown; known: {sorted(sampling.SAMPLERS)}'
    )
  if 'steps' in sampling.SAMPLER_OPTIONS[sm.method] and not 1 <= sm.steps <= num_steps:
    raise InputError(
      f'config sample.steps={sm.steps}: must be in [1, diffusion.num_steps={num_steps}]'
    )
  if sm.eta < 0:
    raise InputError(f'config sample.eta={sm.eta}: must be >= 0')
  if sm.guidance and not config.diffusion.label_dropout:
    raise InputError(
      f'config sample.guidance={sm.guidance} needs a model trained with '
      'diffusion.label_dropout > 0 (the null label was never trained)'
    )
  if sm.clip_x0 < 0:
    raise InputError(f'config sample.clip_x0={sm.clip_x0}: must be >= 0 (0: no clipping)')
  if sm.decode_thresholds not in DECODE_THRESHOLDS:
    raise InputError(
      f'config sample.decode_thresholds={sm.decode_thresholds!r}: must be one '
      f'of {", ".join(DECODE_THRESHOLDS)}'
    )
  if sm.batch_size < 1:
    raise InputError(f'config sample.batch_size={sm.batch_size}: must be >= 1')
  options = {k: sm[k] for k in sampling.SAMPLER_OPTIONS[sm.method]}
  return dict(
    method=sm.method, guidance=float(sm.guidance), clip_x0=float(sm.clip_x0) or None, **options
  )


# -------------------------------------------------------------------------- stage
DECODE_THRESHOLDS = ('matched', 'train')


def matched_codec(codec, emb_NxGxC, calibration_people: int):
  """The codec with thresholds matched on the first `calibration_people` rows (0: all).

  Returns:
    (codec, number of rows it was calibrated on).
  """
  from gdiff.embedding import codec as codec_lib

  m = len(emb_NxGxC) if calibration_people <= 0 else min(len(emb_NxGxC), calibration_people)
  thresholds = codec_lib.matched_thresholds(codec, np.asarray(emb_NxGxC[:m]))
  logging.info('sample: decode thresholds matched to train genotype frequencies on %d people', m)
  return dataclasses.replace(codec, thresholds_Sx2=thresholds), m


def restore_params(
  config: ml_collections.ConfigDict,
  workdir: str,
  which: str | int = 'best',
  use_ema: bool = True,
  mesh: jax.sharding.Mesh | None = None,
):
  """Parameters of a training checkpoint in W/checkpoints, replicated on `mesh`.

  Only the parameters are read (`gdiff.checkpoint.restore_params`): no trainer or
  optimizer is built.

  Args:
    config: the gdiff config used for training.
    workdir: W.
    which: 'best' (lowest val loss; the latest if there is no val split), 'latest',
      or a step number.
    use_ema: the EMA parameters (True) or the raw ones (also when trained
      without EMA, train.ema_decay = 0).
    mesh: default: all devices (`gdiff.distributed.make_mesh`).

  Returns:
    (params, step).
  """
  mesh = distributed.make_mesh() if mesh is None else mesh
  mc = models.load_model_config(config, wd.Layout(workdir).embedding)
  abstract = models.abstract_params(mc, NamedSharding(mesh, P()))
  return checkpoint.restore_params(
    wd.Layout(workdir).checkpoints,
    abstract,
    which,
    use_ema=use_ema,
    has_ema=config.train.ema_decay > 0,
  )


def embedding_shape(config: ml_collections.ConfigDict, workdir: str) -> tuple[int, int]:
  """(G, C) of the diffusion model's embedding: the sampled embedding is kept in the HDF5 file."""
  mc = models.load_model_config(config, wd.Layout(workdir).embedding)
  return mc.num_groups, mc.slots


def diffusion_rows(
  config: ml_collections.ConfigDict,
  workdir: str,
  h5,
  label_ids_N: np.ndarray,
  first_id: int = 0,
  calibration=None,
) -> dict:
  """Samples the diffusion model into `h5` (None on processes other than 0); manifest entries.

  Every process samples (the mesh spans them); process 0 decodes and writes. People
  first_id.. are drawn; matched decode thresholds are fit on `calibration` (embeddings of
  the cohort already drawn, for the release gate's replacements) instead of on `h5`'s own.
  """
  from gdiff.embedding import codec as codec_lib

  settings = sampler_settings(config)
  layout = wd.Layout(workdir)
  codec = codec_lib.Codec.load(layout.codec)
  num_snps = len(cohort_lib.load_cohort(layout.data).variants())
  if codec.num_snps != num_snps:
    raise InputError(
      f'{layout.codec} has {codec.num_snps} SNPs but the cohort {num_snps}; '
      'rerun --mode=prepare in a new workdir'
    )
  mc = models.load_model_config(config, layout.embedding)
  model = models.build(mc)
  mesh = distributed.make_mesh()
  params, step = restore_params(
    config, workdir, which=config.sample.checkpoint, use_ema=config.sample.use_ema, mesh=mesh
  )
  apply_fn = lambda p, x, t, y: model.apply({'params': p}, x, t, y, train=False)
  schedule = diffusion.make_schedule(config.diffusion.schedule, config.diffusion.num_steps)
  method = settings.pop('method')
  sampler = sampling.make_sampler(
    method,
    apply_fn,
    schedule,
    mc.mask_GxC,
    null_label=mc.num_classes,
    prediction=config.diffusion.prediction,
    **settings,
  )
  key = sample_key(config)
  logging.info(
    'sample: %d people with %s from checkpoint step %d on %d device(s)',
    len(label_ids_N),
    method,
    step,
    mesh.devices.size,
  )
  run = lambda y, ids: sampler(params, key, y, ids)
  batch = config.sample.batch_size
  if h5 is None:  # a process other than 0: its part of every batch, nothing written
    generate(
      run,
      lambda emb: np.zeros((len(emb), 0), np.int8),
      label_ids_N,
      batch,
      mesh,
      lambda *_: None,
      first_id,
    )
    return {}
  matched = config.sample.decode_thresholds == 'matched' and codec.decoder == 'calibrated'
  if matched:  # all embeddings first, then thresholds from them, then the genotypes
    generate(
      run,
      lambda emb: None,
      label_ids_N,
      batch,
      mesh,
      lambda lo, _, emb: h5.write_rows(lo, None, emb),
      first_id,
    )
    codec, calibration_people = matched_codec(
      codec,
      h5.file['emb'] if calibration is None else calibration,
      int(config.sample.calibration_people),
    )
    for lo in range(0, len(label_ids_N), batch):
      h5.write_rows(lo, codec.decode(h5.file['emb'][lo : lo + batch]))
  else:
    generate(run, codec.decode, label_ids_N, batch, mesh, h5.write_rows, first_id)
  manifest = dict(
    generator='diffusion',
    checkpoint_step=step,
    method=method,
    **settings,
    use_ema=bool(config.sample.use_ema),
    seed=config.sample.seed,
    decode_thresholds='matched' if matched else 'train',
  )
  if matched:
    manifest['calibration_people'] = calibration_people
  return manifest


def provenance(
  config: ml_collections.ConfigDict, manifest: dict, reference: str | None = None
) -> list[str]:
  """The synthetic VCF's extra header lines: that no sample is real, what made it (the sample
  `manifest`, the resolved config's hash, the diffusion checkpoint's step), and the input's
  ##reference. No command line or path: a VCF is shared, the manifest keeps argv."""
  import gdiff

  scalars = sorted(k for k, v in manifest.items() if isinstance(v, (str, int, float, bool)))
  settings = ','.join(f'{k}={manifest[k]}' for k in scalars)
  step = manifest.get('checkpoint_step')
  return (
    [
      '##syntheticData=every sample in this file is synthetic, drawn by gdiff from a model fit '
      'on a real cohort; no sample is a real person',
      f'##gdiffVersion={gdiff.__version__}',
      f'##gdiffGenerator={config.generator}',
      f'##gdiffSeed=seed={config.seed},sample.seed={config.sample.seed}',
      f'##gdiffSampler={settings}',
      f'##gdiffConfigHash={wd.config_hash(config)}',
    ]
    + ([f'##gdiffCheckpointStep={step}'] if step is not None else [])
    + ([f'##reference={reference}'] if reference else [])
    + dp_header(manifest)
  )


def dp_header(manifest: dict) -> list[str]:
  """The `##gdiffDPEpsilon=` line of a differentially private fit (`manifest['dp']`), else none."""
  dp = manifest.get('dp')
  if not dp:
    return []
  return [
    f'##gdiffDPEpsilon={dp["epsilon"]},delta={dp["delta"]},noise_multiplier='
    f'{dp["noise_multiplier"]},steps={dp["steps"]},sampling={dp["sampling"]},unit={dp["unit"]}'
  ]


def sample_and_export(
  config: ml_collections.ConfigDict, workdir: str, argv: Sequence[str] = ()
) -> None:
  """Generates the synthetic cohort of `config.sample` and writes W/samples/ (or
  W/samples/NAME/ for `sample.out=NAME`).

  The generator (`gdiff.generators`) fills the HDF5 file's rows; the VCF, PLINK
  and label files are then streamed from it.

  Args:
    config: the full gdiff config.
    workdir: W, with data/, embedding/ and checkpoints/ from earlier stages.
    argv: the command line, kept in manifest.json.
  """
  from gdiff import generators
  from gdiff.privacy import gate

  generator = generators.get(config)
  layout = wd.Layout(workdir)
  cohort = cohort_lib.load_cohort(layout.data)
  variants = cohort.variants()
  counts = class_counts(config.sample, cohort)
  label_ids_N = draw_labels(
    counts, cohort.classes, rng.numpy_stream(config.seed, 'sample_labels', config.sample.seed)
  )
  n = len(label_ids_N)
  if not n:
    raise InputError('config sample.num=0 and the train split is empty: nothing to sample')
  if jax.process_index() != 0:
    generator.fill_rows(config, workdir, None, label_ids_N)
    return
  logging.info('sample: %d people %s', n, counts)
  cohort_name = config.sample.out
  out_dir = layout.cohort(cohort_name)
  if cohort_name:  # W/samples/NAME/ replaced whole; W/samples/ itself must be gdiff's
    wd.claim(layout.samples)
  # Only a folder gdiff wrote is replaced; the default cohort's files are replaced one by
  # one, so the named cohorts in W/samples/ stay.
  replace = wd.replacing(out_dir) if cohort_name else wd.replacing_files(out_dir)
  with replace as tmp_dir:
    samples = export.sample_ids(n)
    labels = np.asarray(cohort.classes)[label_ids_N]
    h5_path = os.path.join(tmp_dir, PREFIX + '.h5')
    phased = generator.phased(config, workdir)
    with export.H5Cohort(
      h5_path,
      n,
      len(variants),
      generator.embedding_shape(config, workdir),
      cohort.classes,
      phased=phased,
    ) as h5:
      manifest = generator.fill_rows(config, workdir, h5, label_ids_N)
      manifest['gate'] = gate.run(config, workdir, cohort, h5, label_ids_N, generator)
      h5.write_samples(samples, labels, label_ids_N)
      h5.write_variants(variants)
    contigs, reference = cohort.input_header()
    with h5py.File(h5_path, 'r') as f:  # streamed back by variant blocks
      written = [h5_path] + export.write_cohort(
        tmp_dir,
        f['dosage'],
        variants,
        samples,
        labels,
        cohort.classes,
        hap0_NxS=f['hap0'] if phased else None,
        prefix=PREFIX,
        formats=('vcf', 'plink', 'labels'),
        vcf_header_lines=provenance(config, manifest, reference),
        vcf_contigs=contigs,
      )
    manifest.update(
      num_samples=n,
      class_counts=counts,
      phased=phased,
      cohort=cohort_name,
      config_hash=wd.config_hash(config),
      argv=list(argv),  # the command line: here, never in the VCF (it holds local paths)
    )
    written.append(os.path.join(tmp_dir, 'manifest.json'))
    with open(written[-1], 'w') as f:
      json.dump(manifest, f, indent=1, sort_keys=True)
  for path in written:
    final = os.path.join(out_dir, os.path.basename(path))
    logging.info('sample: wrote %s (%d bytes)', final, os.path.getsize(final))
