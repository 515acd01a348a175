"""The stages of gdiff, each callable alone: prepare -> train -> sample -> evaluate.

prepare  ingest (or simulate, then ingest) to HDF5 shards, split, fit the
         embedding on train and write the embedded splits as a TFDS dataset.
train    the generator of `config.generator` (gdiff.generators): the autoregressive
         model (convex fit, model choice on val) or the diffusion model (validation,
         checkpoints and resume).
sample   synthetic cohorts from the trained generator, exported (VCF/PLINK/HDF5).
evaluate utility, privacy and realism against real data and baselines; a report.

With several JAX processes every process runs `run`: prepare and evaluate do
their work on process 0 only (file writing, host-side numerics), train and
sample run on all processes (the mesh spans them) and write from process 0;
all processes meet at a barrier after each stage, and only process 0 writes
stage records.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import jax
import ml_collections

from gdiff import workdir as wd
from gdiff.errors import InputError


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

  layout = wd.Layout(workdir)
  inputs = wd.fingerprint(input_files(config))  # before reading them
  data_prepare.prepare(config.data, layout.data, seed=config.seed)
  embedding_fit.fit_and_write(config.embedding, layout.data, layout.embedding)
  wd.mark_done(config, workdir, 'prepare', inputs=inputs)


def input_files(config: ml_collections.ConfigDict) -> dict[str, str]:
  """{option: path} of every input file the config names (recorded by prepare)."""
  from gdiff.data import prepare as data_prepare
  from gdiff.embedding import fit as embedding_fit

  return {**data_prepare.input_files(config.data), **embedding_fit.input_files(config.embedding)}


def train(config: ml_collections.ConfigDict, workdir: str) -> None:
  from gdiff import generators

  generator = generators.get(config)
  if wd.check(config, workdir, 'train') and generator.trained(
    wd.read_record(workdir, 'train'), config
  ):
    logging.info('train: reusing the checkpoints in %s', wd.Layout(workdir).checkpoints)
    return
  if _main_process():
    layout = wd.Layout(workdir)
    wd.claim(layout.checkpoints)
    wd.claim(layout.logs)
  _barrier('train-claim')
  extra = generator.train(config, workdir)
  if _main_process():
    wd.mark_done(config, workdir, 'train', **extra)


def sample(config: ml_collections.ConfigDict, workdir: str, argv: Sequence[str] = ()) -> None:
  layout, cohort = wd.Layout(workdir), config.sample.out
  if wd.check(config, workdir, 'sample'):
    logging.info('sample: reusing the synthetic cohort in %s', layout.cohort(cohort))
    return
  from gdiff import sample as sample_lib

  if _main_process():
    # Its outputs are about to be replaced, and so is what a report of them said.
    wd.forget(workdir, 'sample', cohort)
    wd.forget(workdir, 'evaluate', cohort)
    wd.mark_stale(layout.cohort_report(cohort), cohort)
  sample_lib.sample_and_export(config, workdir, argv)
  if _main_process():
    wd.mark_done(config, workdir, 'sample')


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> None:
  layout, cohort = wd.Layout(workdir), config.sample.out
  if wd.check(config, workdir, 'evaluate'):
    logging.info('evaluate: reusing the report in %s', layout.cohort_report(cohort))
    return
  if not _main_process():
    return
  from gdiff.evaluate import run as evaluate_lib

  wd.forget(workdir, 'evaluate', cohort)  # its outputs are about to be replaced
  evaluate_lib.evaluate(config, workdir)
  wd.write_cohort_note(layout.cohort_report(cohort), cohort, layout.cohort(cohort))
  wd.mark_done(config, workdir, 'evaluate')


STAGES = {'prepare': prepare, 'train': train, 'sample': sample, 'evaluate': evaluate}
MODES = {'all': tuple(STAGES), **{name: (name,) for name in STAGES}}


# ------------------------------------------------------------------ checks before any stage
# Each check lives with the module that owns its options; `check_config` runs those of
# every stage of a mode before the first one starts, so that a typo fails in seconds
# rather than after ingest or training.


def _check_prepare(config):
  from gdiff.data import prepare as data_prepare
  from gdiff.embedding import fit as embedding_fit

  data_prepare.check_config(config.data)
  embedding_fit.check_config(config.embedding)


def _check_run(config):
  # Options every stage reads.
  if not isinstance(config.seed, int) or config.seed < 0:
    raise InputError(f'config seed={config.seed!r}: must be a whole number >= 0')


def _check_generator(config):
  # Every generator's options, not only the chosen one's: a typo fails wherever it is.
  from gdiff import generators

  generators.get(config)
  for make in generators.GENERATORS.values():
    make().check(config)


def _check_sample(config):
  from gdiff import sample as sample_lib

  _check_generator(config)
  sample_lib.check_config(config.sample)


def _check_evaluate(config):
  from gdiff import sample as sample_lib
  from gdiff.evaluate import run as evaluate_lib

  sample_lib.check_config(config.sample)  # sample.out names the cohort it judges
  evaluate_lib.check_config(config.evaluate)


CHECKS = {
  'prepare': _check_prepare,
  'train': _check_generator,
  'sample': _check_sample,
  'evaluate': _check_evaluate,
}


def check_config(config: ml_collections.ConfigDict, mode: str = 'all') -> None:
  """Raises InputError (one line naming the option) for any bad option of `mode`'s stages."""
  _check_run(config)
  for name in MODES[mode]:
    CHECKS[name](config)


def run(
  config: ml_collections.ConfigDict, workdir: str, mode: str = 'all', argv: Sequence[str] = ()
) -> None:
  """Checks every option and the workdir, then runs the stages of `mode` in order.

  `argv` (the command line) is kept in the samples' manifest.json.
  """
  check_config(config, mode)
  wd.open_workdir(workdir, MODES[mode])
  stages = {**STAGES, 'sample': functools.partial(sample, argv=argv)}
  for name in MODES[mode]:
    logging.info('stage %s', name)
    stages[name](config, workdir)
    _barrier(name)
