"""The stages of gdiff, each callable alone: prepare -> train -> sample -> evaluate.

prepare  ingest (or simulate, then ingest) to HDF5 shards, split, fit the
         embedding on train and write the embedded splits as a TFDS dataset.
train    the diffusion model, with validation, checkpoints and resume.
sample   synthetic cohorts from a checkpoint, decoded and exported (VCF/PLINK/HDF5).
evaluate utility, privacy and realism against real data and baselines; a report.

With several JAX processes every process runs `run`: prepare and evaluate do
their work on process 0 only (file writing, host-side numerics), train and
sample run on all processes (the mesh spans them) and write from process 0;
all processes meet at a barrier after each stage, and only process 0 writes
stage records.
"""

from __future__ import annotations

import logging
import os

import jax
import ml_collections

from gdiff import workdir as wd
from gdiff.errors import InputError

DATA_DIR = 'data'
EMBEDDING_DIR = 'embedding'


def _main_process() -> bool:
  return jax.process_index() == 0


def _barrier(name: str) -> None:
  from gdiff import distributed
  distributed.barrier(f'gdiff-stage-{name}')


def prepare(config: ml_collections.ConfigDict, workdir: str) -> None:
  if wd.check(config, workdir, 'prepare'):
    logging.info('prepare: reusing the cohort and embedding in %s', workdir)
    return
  if not _main_process():
    return
  from gdiff.data import prepare as data_prepare
  from gdiff.embedding import fit as embedding_fit
  data_dir = os.path.join(workdir, DATA_DIR)
  data_prepare.prepare(config.data, data_dir, seed=config.seed)
  embedding_fit.fit_and_write(config.embedding, data_dir,
                              os.path.join(workdir, EMBEDDING_DIR))
  wd.mark_done(config, workdir, 'prepare')


def train(config: ml_collections.ConfigDict, workdir: str) -> None:
  if (wd.check(config, workdir, 'train') and
      wd.read_record(workdir, 'train').get('num_steps', 0) >= config.train.num_steps):
    logging.info('train: reusing the checkpoints in %s/checkpoints', workdir)
    return
  from gdiff import train as train_lib
  train_lib.train_and_evaluate(config, workdir)
  if _main_process():
    wd.mark_done(config, workdir, 'train', num_steps=config.train.num_steps)


def sample(config: ml_collections.ConfigDict, workdir: str) -> None:
  if wd.check(config, workdir, 'sample'):
    logging.info('sample: reusing the synthetic cohort in %s/samples', workdir)
    return
  from gdiff import sample as sample_lib
  sample_lib.sample_and_export(config, workdir)
  if _main_process():
    wd.mark_done(config, workdir, 'sample')


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> None:
  if wd.check(config, workdir, 'evaluate'):
    logging.info('evaluate: reusing the report in %s/report', workdir)
    return
  if not _main_process():
    return
  from gdiff.evaluate import run as evaluate_lib
  evaluate_lib.evaluate(config, workdir)
  wd.mark_done(config, workdir, 'evaluate')


STAGES = {'prepare': prepare, 'train': train, 'sample': sample, 'evaluate': evaluate}
MODES = {'all': tuple(STAGES), **{name: (name,) for name in STAGES}}


def _check_model(config):
  from gdiff import models
  if config.model.name not in models.MODELS:
    raise InputError(f'config model.name={config.model.name!r} is unknown; known: '
                     f'{sorted(models.MODELS)}')
  from gdiff import diffusion
  if config.diffusion.prediction not in diffusion.PREDICTIONS:
    raise InputError(f'config diffusion.prediction={config.diffusion.prediction!r} is unknown; '
                     f'known: {sorted(diffusion.PREDICTIONS)}')
  t = config.train
  if t.recombine_segment_groups < 0 or (t.recombine_segment_groups and
                                        t.recombine_segment_groups < 1):
    raise InputError(f'config train.recombine_segment_groups={t.recombine_segment_groups!r}: '
                     'must be 0 (off) or >= 1 (mean segment length in groups)')
  if not 0 <= t.recombine_prob <= 1:
    raise InputError(f'config train.recombine_prob={t.recombine_prob!r}: must be in [0, 1]')


def _check_sample(config):
  from gdiff import sample as sample_lib
  sample_lib.sampler_settings(config)


def _check_evaluate(config):
  from gdiff.evaluate import run as evaluate_lib
  evaluate_lib.check_config(config.evaluate)


# Cheap checks of each stage's options, run for every stage of a mode before the
# first one starts, so that a typo fails in seconds rather than after training.
CHECKS = {'train': _check_model, 'sample': _check_sample, 'evaluate': _check_evaluate}


def run(config: ml_collections.ConfigDict, workdir: str, mode: str = 'all') -> None:
  """Runs the stages of `mode` in order."""
  for name in MODES[mode]:
    if name in CHECKS:
      CHECKS[name](config)
  os.makedirs(workdir, exist_ok=True)
  for name in MODES[mode]:
    logging.info('stage %s', name)
    STAGES[name](config, workdir)
    _barrier(name)
