"""The generators gdiff trains and samples from, by name (`config.generator`).

  ar         the local autoregressive model over haplotypes (or genotypes) with
             class-specific LD (`gdiff.ar`): fit in minutes, the default.
  diffusion  the paper's class-conditional DDPM over the per-window PCA embedding,
             decoded to genotypes (`gdiff.train`, `gdiff.sampling`).

Each entry gives the stages what differs between generators: the config check,
the train stage, whether a finished train record already covers the config, and
how the sample stage fills the synthetic people's rows of the HDF5 file (the
labels, the export and the manifest are the sample stage's own).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import ml_collections

from gdiff.errors import InputError


@dataclasses.dataclass(frozen=True)
class Generator:
  check: Callable[[ml_collections.ConfigDict], None]
  train: Callable[[ml_collections.ConfigDict, str], dict]  # -> extra train-record entries
  trained: Callable[[dict, ml_collections.ConfigDict], bool]  # (train record, config)
  fill_rows: Callable  # (config, workdir, h5, label_ids_N) -> manifest entries
  phased: Callable[[ml_collections.ConfigDict, str], bool]  # writes haplotypes (hap0)
  embedding_shape: Callable  # (config, workdir) -> (G, C) of the sampled embedding, or None


def _ar() -> Generator:
  from gdiff.ar import stage

  return Generator(
    check=stage.check_config,
    train=stage.train,
    trained=lambda record, _: True,
    fill_rows=stage.fill_rows,
    phased=stage.writes_haplotypes,
    embedding_shape=lambda config, workdir: None,
  )


def _diffusion() -> Generator:
  from gdiff import sample  # the trainer is imported only to train (or to check its options)

  def check(config):
    from gdiff import augment, diffusion, models
    from gdiff import train as train_lib

    models.check_config(config.model)
    diffusion.check_config(config.diffusion)
    augment.check_config(config.train)
    train_lib.check_config(config)
    sample.sampler_settings(config)

  def train(config, workdir):
    from gdiff import train as train_lib

    train_lib.train_and_evaluate(config, workdir)
    return {'num_steps': config.train.num_steps}

  return Generator(
    check=check,
    train=train,
    trained=lambda record, config: record.get('num_steps', 0) >= config.train.num_steps,
    fill_rows=sample.diffusion_rows,
    phased=lambda config, workdir: False,
    embedding_shape=sample.embedding_shape,
  )


GENERATORS = {'ar': _ar, 'diffusion': _diffusion}


def get(config: ml_collections.ConfigDict) -> Generator:
  """The generator `config.generator` names (InputError naming the option otherwise)."""
  if config.generator not in GENERATORS:
    raise InputError(
      f'config generator={config.generator!r} is unknown; known: {", ".join(sorted(GENERATORS))}'
    )
  return GENERATORS[config.generator]()
