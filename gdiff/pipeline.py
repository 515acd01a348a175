"""The stages of gdiff, each callable alone: prepare -> train -> sample -> evaluate.

prepare  ingest (or simulate, then ingest) to HDF5 shards, split, fit the
         embedding on train and write the embedded splits as a TFDS dataset.
train    the diffusion model, with validation, checkpoints and resume.
sample   synthetic cohorts from a checkpoint, decoded and exported (VCF/PLINK/HDF5).
evaluate utility, privacy and realism against real data and baselines; a report.
"""

from __future__ import annotations

import logging
import os

import ml_collections

from gdiff import workdir as wd

DATA_DIR = 'data'
EMBEDDING_DIR = 'embedding'


def prepare(config: ml_collections.ConfigDict, workdir: str) -> None:
  if wd.check(config, workdir, 'prepare'):
    logging.info('prepare: reusing the cohort and embedding in %s', workdir)
    return
  from gdiff.data import prepare as data_prepare
  from gdiff.embedding import fit as embedding_fit
  data_dir = os.path.join(workdir, DATA_DIR)
  data_prepare.prepare(config.data, data_dir, seed=config.seed)
  embedding_fit.fit_and_write(config.embedding, data_dir,
                              os.path.join(workdir, EMBEDDING_DIR))
  wd.mark_done(config, workdir, 'prepare')


def train(config: ml_collections.ConfigDict, workdir: str) -> None:
  wd.check(config, workdir, 'train')
  from gdiff import train as train_lib
  train_lib.train_and_evaluate(config, workdir)
  wd.mark_done(config, workdir, 'train', num_steps=config.train.num_steps)


def sample(config: ml_collections.ConfigDict, workdir: str) -> None:
  if wd.check(config, workdir, 'sample'):
    logging.info('sample: reusing the synthetic cohort in %s/samples', workdir)
    return
  from gdiff import sample as sample_lib
  sample_lib.sample_and_export(config, workdir)
  wd.mark_done(config, workdir, 'sample')


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> None:
  if wd.check(config, workdir, 'evaluate'):
    logging.info('evaluate: reusing the report in %s/report', workdir)
    return
  from gdiff.evaluate import run as evaluate_lib
  evaluate_lib.evaluate(config, workdir)
  wd.mark_done(config, workdir, 'evaluate')


STAGES = {'prepare': prepare, 'train': train, 'sample': sample, 'evaluate': evaluate}
MODES = {'all': tuple(STAGES), **{name: (name,) for name in STAGES}}


def run(config: ml_collections.ConfigDict, workdir: str, mode: str = 'all') -> None:
  """Runs the stages of `mode` in order."""
  os.makedirs(workdir, exist_ok=True)
  for name in MODES[mode]:
    logging.info('stage %s', name)
    STAGES[name](config, workdir)
