"""The train and sample stages of the autoregressive generator (`generator='ar'`).

train   reads the train and val splits as sequences: the two haplotypes of each
        person when the cohort is phased (`ar.unit='auto'`), else each person's
        genotypes; fits the model once per context length in `ar.context_snps` and
        keeps the one whose val log-likelihood is highest (the cohort chooses how
        far LD reaches in SNPs: array-like vs sequence-like density); writes
        W/checkpoints/ar/ (orbax: the parameters; fit.json: the choice and its evidence).
        With `ar.ancestry_pcs` = P > 0, every model also conditions on each person's
        ancestry code (`gdiff.ar.ancestry`: top P PCs of the train genotypes); the
        code's per-class Gaussian is saved in fit.json.
        With `ar.dp.enabled`, one fit by DP-Adam at the fixed `ar.dp.context_snps`
        (`gdiff.ar.dp`); its `dp` record (epsilon, delta, ...) goes into fit.json,
        the train stage's record and the samples' manifest and VCF header.
sample  draws each synthetic person (its ancestry code first, then two haplotypes or
        one genotype sequence) batch by batch and hands the rows to the sample
        stage's HDF5 writer.

The fit and the sampling run on process 0 over its local devices; with several
processes the others wait at the stage barrier (a segment's model is small).
"""

from __future__ import annotations

import json
import logging
import math
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gdiff import distributed, rng
from gdiff import workdir as wd
from gdiff.ar import ancestry as ancestry_lib
from gdiff.ar import dp as dp_lib
from gdiff.ar import fit as fit_lib
from gdiff.ar import model as model_lib
from gdiff.ar import sampler
from gdiff.ar import segments as segments_lib
from gdiff.data import cohort as cohort_lib
from gdiff.errors import InputError

# ar.unit -> states of one sequence element (haplotype alleles, or ALT counts).
UNITS = {'haplotype': 2, 'genotype': 3}
FOLDER = 'ar'  # under W/checkpoints
FIT_FILE = 'fit.json'


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises InputError naming the option for bad `ar` settings (before any stage)."""
  a = config.ar
  if a.unit not in ('auto', *UNITS):
    raise InputError(f"config ar.unit={a.unit!r}: use 'auto', {', '.join(map(repr, UNITS))}")
  try:
    contexts = context_lengths(a)
  except (TypeError, ValueError):
    contexts = ()
  if not contexts or any(k < 1 for k in contexts) or len(set(contexts)) < len(contexts):
    raise InputError(
      f'config ar.context_snps={a.context_snps!r}: one or more distinct whole lengths >= 1'
    )
  for option in ('l2_shared', 'l2_class'):
    if not a[option] > 0:
      raise InputError(f'config ar.{option}={a[option]!r}: must be > 0')
  for option in ('block_snps', 'max_iter'):
    if int(a[option]) < 1:
      raise InputError(f'config ar.{option}={a[option]!r}: must be >= 1')
  if not a.tol > 0:
    raise InputError(f'config ar.tol={a.tol!r}: must be > 0')
  if a.solver not in fit_lib.SOLVERS:
    raise InputError(f'config ar.solver={a.solver!r}: one of {", ".join(fit_lib.SOLVERS)}')
  if not (isinstance(a.ancestry_pcs, int) and a.ancestry_pcs >= 0):
    raise InputError(f'config ar.ancestry_pcs={a.ancestry_pcs!r}: a whole number >= 0')
  segments_lib.mode(a)
  if not config.sample.temperature > 0:
    raise InputError(f'config sample.temperature={config.sample.temperature!r}: must be > 0')
  if a.dp.enabled:
    check_dp_config(a.dp)
    if a.ancestry_pcs:  # the codes' PCA and Gaussian would be fit on train outside the budget
      raise InputError(
        f'config ar.ancestry_pcs={a.ancestry_pcs!r}: must be 0 with ar.dp.enabled=True'
      )
    if segments_lib.segmented(a):  # one budget per fit: segments would compose
      raise InputError(f"config ar.segments={a.segments!r}: must be 'genome' with ar.dp.enabled")


def check_dp_config(d: ml_collections.ConfigDict) -> None:
  """Raises InputError naming the option for bad `ar.dp` settings."""
  if d.accountant not in dp_lib.ACCOUNTANTS:
    raise InputError(
      f'config ar.dp.accountant={d.accountant!r}: use {", ".join(map(repr, dp_lib.ACCOUNTANTS))}'
    )
  if not (d.noise_multiplier > 0 or d.target_epsilon > 0):
    raise InputError(
      f'config ar.dp.target_epsilon={d.target_epsilon!r} and ar.dp.noise_multiplier='
      f'{d.noise_multiplier!r}: set one > 0'
    )
  if d.noise_multiplier < 0:
    raise InputError(f'config ar.dp.noise_multiplier={d.noise_multiplier!r}: must be >= 0')
  if not 0 <= d.delta < 1:
    raise InputError(f'config ar.dp.delta={d.delta!r}: must be in [0, 1) (0: 1 / (10 n))')
  for option in ('clip_norm', 'learning_rate'):
    if not d[option] > 0:
      raise InputError(f'config ar.dp.{option}={d[option]!r}: must be > 0')
  for option in ('batch_people', 'steps', 'context_snps', 'microbatch'):
    if not isinstance(d[option], int) or d[option] < 1:
      raise InputError(f'config ar.dp.{option}={d[option]!r}: a whole number >= 1')


def context_lengths(ar_cfg: ml_collections.ConfigDict) -> tuple[int, ...]:
  """`ar.context_snps` as a tuple of ints (one length or several to choose from on val)."""
  k = ar_cfg.context_snps
  return tuple(int(x) for x in (k if isinstance(k, (tuple, list)) else (k,)))


def resolve_unit(ar_cfg: ml_collections.ConfigDict, cohort: cohort_lib.Cohort) -> str:
  """'haplotype' for a phased cohort under ar.unit='auto', else ar.unit ('genotype')."""
  if ar_cfg.unit == 'auto':
    return 'haplotype' if cohort.phased else 'genotype'
  if ar_cfg.unit == 'haplotype' and not cohort.phased:
    raise InputError(
      f"config ar.unit='haplotype': the cohort in {cohort.directory} is not "
      f"phased; use ar.unit='genotype' or 'auto', or give a phased VCF"
    )
  return ar_cfg.unit


def sequences(cohort: cohort_lib.Cohort, split: str, unit: str) -> tuple[np.ndarray, np.ndarray]:
  """(x_NxS int8, class_N int32) of one split: rows 2i, 2i+1 = person i's haplotypes."""
  labels = cohort.label_ids[cohort.indices(split)].astype(np.int32)
  if unit == 'genotype':
    return cohort.dosages(split).astype(np.int8), labels
  haps = cohort.haplotypes(split)  # (n, 2, S)
  return haps.reshape(-1, haps.shape[-1]).astype(np.int8), np.repeat(labels, 2)


def model_config(
  ar_cfg: ml_collections.ConfigDict, unit: str, num_classes: int, context: int, ancestry: int = 0
) -> model_lib.ARConfig:
  """The typed model of one candidate context length, from the `ar` config section."""
  return model_lib.ARConfig(
    num_states=UNITS[unit],
    num_classes=num_classes,
    context=context,
    per_class=bool(ar_cfg.per_class),
    l2_shared=float(ar_cfg.l2_shared),
    l2_class=float(ar_cfg.l2_class),
    ancestry=int(ancestry),
  )


def _local_mesh() -> jax.sharding.Mesh:
  """This process's devices: the fit and the sampler run on process 0 alone."""
  return distributed.make_mesh(jax.local_devices())


def train(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Fits the model (see the module docstring); returns the fit summary (also in fit.json)."""
  if jax.process_index() != 0:
    return {}
  if segments_lib.segmented(config.ar):
    return segments_lib.train(config, workdir)
  layout = wd.Layout(workdir)
  cohort = cohort_lib.load_cohort(layout.data)
  unit = resolve_unit(config.ar, cohort)
  chrom = cohort.variants().chrom
  x, y = sequences(cohort, 'train', unit)
  x_val, y_val = sequences(cohort, 'val', unit)
  if len(x) < 2:
    raise InputError(f'{layout.data}: the train split has {len(x)} sequences')
  codes = ancestry_codes(cohort, unit, int(config.ar.ancestry_pcs))
  z, z_val = codes['train'], codes['val']
  val = (x_val, y_val, z_val) if len(x_val) else None
  mesh = _local_mesh()
  if config.ar.dp.enabled:
    return _train_dp(config, layout, cohort, unit, x, y, val, mesh)
  candidates = []
  # Newton: a shorter context's fit starts the next one (the same unique optimum, fewer
  # steps); L-BFGS stops short of it, so its fits stay from zero tables as they were.
  previous = None
  for k in context_lengths(config.ar):
    cfg = model_config(config.ar, unit, len(cohort.classes), k, codes['pcs'])
    params, info = fit_lib.fit(
      cfg,
      x,
      y,
      chrom,
      block_snps=int(config.ar.block_snps),
      max_iter=int(config.ar.max_iter),
      tol=float(config.ar.tol),
      solver=config.ar.solver,
      init=previous[1] if previous and previous[0] < k else None,
      val=val,
      mesh=mesh,
      z_NxP=z,
    )
    if 'val_log_likelihood' in info:
      logging.info(
        'ar: context %d SNPs: val log-likelihood %.2f per sequence', k, info['val_log_likelihood']
      )
    candidates.append((info.get('val_log_likelihood', 0.0), k, params, info))
    if config.ar.solver == 'newton':
      previous = (k, params)
  best = max(candidates, key=lambda c: c[0]) if val else candidates[0]
  _, k, params, info = best
  summary = {
    'unit': unit,
    'context_snps': k,
    'num_sequences': len(x),
    'num_snps': int(x.shape[1]),
    'classes': list(cohort.classes),
    'candidates': [{'context_snps': c[1], **c[3]} for c in candidates],
    'chosen_by': 'val log-likelihood' if val else 'first (no val split)',
  }
  if codes['pcs']:
    summary['ancestry'] = {'pcs': codes['pcs'], **codes['density']}
  with wd.replacing(os.path.join(layout.checkpoints, FOLDER)) as tmp:
    save_params(os.path.join(tmp, 'params'), params)
    with open(os.path.join(tmp, FIT_FILE), 'w') as f:
      json.dump(summary, f, indent=1)
  logging.info('ar: kept context %d SNPs (%s)', k, summary['chosen_by'])
  return {'ar_unit': unit, 'ar_context_snps': k}


def ancestry_codes(cohort: cohort_lib.Cohort, unit: str, num_pcs: int) -> dict:
  """The train and val sequences' ancestry codes and the train classes' Gaussian.

  {'pcs': P, 'train': (N_seq, P) or None, 'val': ..., 'density': {'mean', 'chol'}}; P is
  `num_pcs` capped by the train split (0: no codes, None everywhere).
  """
  train = cohort.dosages('train')
  pcs = min(int(num_pcs), len(train) - 1, train.shape[1])
  if pcs <= 0:
    return {'pcs': 0, 'train': None, 'val': None, 'density': None}
  projection = ancestry_lib.fit_projection(train, pcs)
  per_seq = 2 if unit == 'haplotype' else 1
  labels = cohort.label_ids[cohort.indices('train')]
  z = projection(train)
  val = cohort.dosages('val')
  z_val = projection(val) if len(val) else np.zeros((0, pcs), np.float32)
  return {
    'pcs': pcs,
    'train': np.repeat(z, per_seq, 0),
    'val': np.repeat(z_val, per_seq, 0),
    'density': ancestry_lib.class_density(z, labels, len(cohort.classes)),
  }


def dp_settings(d: ml_collections.ConfigDict, people: int) -> dp_lib.DPConfig:
  """The DP-SGD settings of `ar.dp` for `people` training people (noise calibrated to
  `target_epsilon` unless `noise_multiplier` is set)."""
  delta = float(d.delta) or 1.0 / (10 * people)
  q = min(1.0, int(d.batch_people) / people)
  sigma = float(d.noise_multiplier)
  if sigma <= 0 and math.isinf(d.target_epsilon):  # no noise: clipping and sampling alone
    sigma = 0.0
  elif sigma <= 0:
    sigma = dp_lib.calibrate(q, int(d.steps), float(d.target_epsilon), delta, d.accountant)
  return dp_lib.DPConfig(
    noise_multiplier=sigma,
    clip_norm=float(d.clip_norm),
    sampling_rate=q,
    steps=int(d.steps),
    delta=delta,
    learning_rate=float(d.learning_rate),
    microbatch=int(d.microbatch),
    accountant=d.accountant,
  )


def _train_dp(config, layout, cohort, unit, x, y, val, mesh) -> dict:
  """The train stage under `ar.dp.enabled`: one DP-Adam fit at `ar.dp.context_snps`."""
  per = 2 if unit == 'haplotype' else 1  # sequences per person
  people = len(x) // per
  chrom = cohort.variants().chrom
  k = int(config.ar.dp.context_snps)
  cfg = model_config(config.ar, unit, len(cohort.classes), k)
  dp = dp_settings(config.ar.dp, people)
  params, info = dp_lib.fit(
    cfg,
    dp,
    x.reshape(people, per, x.shape[1]),
    y[::per],
    chrom,
    key=rng.stream(config.seed, 'ar_dp_noise'),
    seed=rng.numpy_stream(config.seed, 'ar_dp_sampling'),
    mesh=mesh,
  )
  if val is not None:  # reported only: nothing is chosen on it
    x_val, y_val, _ = val  # no ancestry code under DP (check_config)
    info['val_log_likelihood'] = fit_lib.log_likelihood(
      cfg, params, x_val, y_val, chrom, block_snps=int(config.ar.block_snps), mesh=mesh
    ) / max(len(x_val), 1)
  summary = {
    'unit': unit,
    'context_snps': k,
    'num_sequences': len(x),
    'num_snps': int(x.shape[1]),
    'classes': list(cohort.classes),
    'candidates': [{'context_snps': k, **{n: v for n, v in info.items() if n != 'dp'}}],
    'chosen_by': 'fixed under differential privacy (ar.dp.context_snps)',
    'dp': info['dp'],
  }
  with wd.replacing(os.path.join(layout.checkpoints, FOLDER)) as tmp:
    save_params(os.path.join(tmp, 'params'), params)
    with open(os.path.join(tmp, FIT_FILE), 'w') as f:
      json.dump(summary, f, indent=1)
  return {'ar_unit': unit, 'ar_context_snps': k, 'dp': info['dp']}


def save_params(path: str, params: dict) -> None:
  """Writes the fitted tables (numpy arrays) as one orbax checkpoint under `path`."""
  mngr = ocp.CheckpointManager(
    os.path.abspath(path), options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True)
  )
  mngr.save(0, args=ocp.args.StandardSave({k: np.asarray(v) for k, v in params.items()}))
  mngr.wait_until_finished()
  mngr.close()


def writes_haplotypes(config: ml_collections.ConfigDict, workdir: str) -> bool:
  """Whether the fitted model draws haplotypes (the sample stage then writes them phased)."""
  del config
  return _summary(workdir)['unit'] == 'haplotype'


def _summary(workdir: str) -> dict:
  path = os.path.join(wd.Layout(workdir).checkpoints, FOLDER, FIT_FILE)
  if not os.path.exists(path):
    raise InputError(f'{path} is missing; run --mode=train first')
  with open(path) as f:
    return json.load(f)


def load(workdir: str, mesh: jax.sharding.Mesh) -> tuple[dict, dict]:
  """(params replicated on `mesh`, with `valid`; the fit summary) of W/checkpoints/ar."""
  folder = os.path.join(wd.Layout(workdir).checkpoints, FOLDER)
  summary = _summary(workdir)
  if 'segments' in summary:
    return _load_segments(workdir, summary, mesh), summary
  mngr = ocp.CheckpointManager(
    os.path.abspath(os.path.join(folder, 'params')),
    options=ocp.CheckpointManagerOptions(read_only=True),
  )
  params = mngr.restore(mngr.latest_step(), args=ocp.args.StandardRestore())
  mngr.close()
  chrom_S = cohort_lib.load_cohort(wd.Layout(workdir).data).variants().chrom
  if np.shape(params['c'])[0] != len(chrom_S):
    raise InputError(
      f'{folder} was fit on {np.shape(params["c"])[0]} SNPs but the cohort has {len(chrom_S)}; '
      'rerun in a new workdir'
    )
  params['valid'] = model_lib.context_valid(chrom_S, summary['context_snps'])
  if 'ancestry' in summary:
    params['ancestry_mean'] = np.asarray(summary['ancestry']['mean'], np.float32)
    params['ancestry_chol'] = np.asarray(summary['ancestry']['chol'], np.float32)
  replicated = NamedSharding(mesh, P())
  return {k: jax.device_put(jnp.asarray(v), replicated) for k, v in params.items()}, summary


def _load_segments(workdir: str, summary: dict, mesh: jax.sharding.Mesh) -> dict:
  """The segments' models (`segments_lib.load`), replicated on `mesh`, as
  {'segments': [(lo, hi, params)], 'num_snps': S[, 'ancestry_mean', 'ancestry_chol']}."""
  chrom_S = cohort_lib.load_cohort(wd.Layout(workdir).data).variants().chrom
  replicated = NamedSharding(mesh, P())

  def put(tree):
    return {k: jax.device_put(jnp.asarray(v), replicated) for k, v in tree.items()}

  out = {
    'segments': [(lo, hi, put(p)) for lo, hi, p in segments_lib.load(workdir, summary, chrom_S)],
    'num_snps': len(chrom_S),
  }
  if 'ancestry' in summary:
    out.update(
      put(
        {
          'ancestry_mean': np.asarray(summary['ancestry']['mean'], np.float32),
          'ancestry_chol': np.asarray(summary['ancestry']['chol'], np.float32),
        }
      )
    )
  return out


def _draw_segments(
  params: dict, seq_labels, seq_ids, key, temperature: float, z, sharding
) -> np.ndarray:
  """States (B, S) of sequences drawn segment by segment in genome order: each segment from
  the slice of the whole-genome uniforms, starting from the states before it."""
  num_snps = params['num_snps']
  u_BxS = sampler.uniforms(key, seq_ids, num_snps)
  states = np.zeros((len(seq_ids), num_snps), np.int8)
  for lo, hi, seg in params['segments']:
    k = seg['valid'].shape[1]
    pad = sampler.num_states(seg)
    start = np.full((len(seq_ids), k), pad, np.int32)
    for d in range(1, min(k, lo) + 1):
      start[:, d - 1] = states[:, lo - d]
    states[:, lo:hi] = np.asarray(
      sampler.sample(
        seg,
        seq_labels,
        seq_ids,
        key,
        temperature=temperature,
        z_BxP=z,
        u_BxS=u_BxS[:, lo:hi],
        start_BxK=jax.device_put(start, sharding),
      )
    )
  return states


def draw(
  params: dict,
  unit: str,
  label_ids_N: np.ndarray,
  key: jax.Array,
  *,
  temperature: float,
  batch_size: int,
  mesh: jax.sharding.Mesh,
  first_id: int = 0,
):
  """Yields (lo, dosage_BxS int8, hap0_BxS int8 or None) for the people `label_ids_N`, in
  batches sharded over `mesh`; person lo + i draws from `fold_in(key, first_id + its row)`
  alone, so the people do not depend on the batch size or the device count (the release
  gate draws replacements with ids beyond N). A model with an ancestry code draws each
  person's code first (`rng.sample_substream(key, 'ancestry')`)."""
  n = len(label_ids_N)
  devices = mesh.devices.size
  batch = -(-max(1, min(int(batch_size), n)) // devices) * devices
  sharding = NamedSharding(mesh, P('data'))
  for lo in range(0, n, batch):
    real = min(batch, n - lo)
    labels = np.zeros(batch, np.int32)
    labels[:real] = label_ids_N[lo : lo + real]
    seq_labels, seq_ids = (
      jnp.asarray(labels),
      jnp.arange(first_id + lo, first_id + lo + batch, dtype=jnp.int32),
    )
    z = None
    if 'ancestry_mean' in params:
      density = {'mean': params['ancestry_mean'], 'chol': params['ancestry_chol']}
      z = ancestry_lib.draw(density, seq_labels, seq_ids, rng.sample_substream(key, 'ancestry'))
    if unit == 'haplotype':
      z = None if z is None else jnp.repeat(z, 2, 0)
      seq_labels, seq_ids = sampler.haplotype_pairs(seq_labels, seq_ids)
    seq_labels, seq_ids = jax.device_put((seq_labels, seq_ids), sharding)
    z = None if z is None else jax.device_put(z, sharding)
    if 'segments' in params:
      states = _draw_segments(params, seq_labels, seq_ids, key, float(temperature), z, sharding)
    else:
      states = np.asarray(
        sampler.sample(params, seq_labels, seq_ids, key, temperature=float(temperature), z_BxP=z)
      )
    if unit == 'haplotype':
      hap0 = states[0::2][:real].astype(np.int8)
      yield lo, (hap0 + states[1::2][:real]).astype(np.int8), hap0
    else:
      yield lo, states[:real].astype(np.int8), None


def fill_rows(
  config: ml_collections.ConfigDict,
  workdir: str,
  h5,
  label_ids_N: np.ndarray,
  first_id: int = 0,
  calibration=None,
) -> dict:
  """Draws the synthetic people first_id.. into `h5` (an `export.H5Cohort`); returns manifest
  entries. `calibration` is unused (the diffusion generator's).

  Process 0 alone draws (`h5` is None on the others, which return at once).
  """
  del calibration
  if h5 is None:
    return {}
  mesh = _local_mesh()
  params, summary = load(workdir, mesh)
  temperature = float(config.sample.temperature)
  key = rng.stream(config.seed, 'sample', config.sample.seed)
  batches = draw(
    params,
    summary['unit'],
    label_ids_N,
    key,
    temperature=temperature,
    batch_size=int(config.sample.batch_size),
    mesh=mesh,
    first_id=first_id,
  )
  for lo, dosage, hap0 in batches:
    h5.write_rows(lo, dosage, hap0_BxS=hap0)
    logging.info('sample: %d / %d people', lo + len(dosage), len(label_ids_N))
  out = {
    'generator': 'ar',
    'unit': summary['unit'],
    'context_snps': summary['context_snps'],
    'temperature': temperature,
    'seed': int(config.sample.seed),
  }
  if 'dp' in summary:
    out['dp'] = summary['dp']
  return out
