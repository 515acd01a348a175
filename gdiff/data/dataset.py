"""The embedded splits as a TFDS dataset in array_record format, read with grain.

Written by `gdiff.embedding.fit` under `EMB_DIR/tfds/gdiff_embedding/1.0.0/`
(one array_record file per split, features `emb` float32 (G, C) and `label`
int32, examples in cohort order). TensorFlow is not needed: tfds writes and
reads array_record with its numpy code path, and grain samples it.

  load_split(emb_dir, split)      whole split as numpy arrays.
  make_loader(emb_dir, split, batch_size, seed, ...)
                                  a grain DataLoader; its iterator has
                                  get_state/set_state (and grain.checkpoint
                                  CheckpointSave/CheckpointRestore for orbax).
"""

from __future__ import annotations

import json
import logging
import os

import grain
import numpy as np

from gdiff import errors

TFDS_DIR = 'tfds'
NAME = 'gdiff_embedding'
_VERSION = '1.0.0'


def _tfds():
  # Imported lazily: tfds is slow to import and only needed for I/O.
  import tensorflow_datasets as tfds

  tfds.disable_progress_bar()
  return tfds


def _builder_class():
  tfds = _tfds()
  from tensorflow_datasets.core import utils as tfds_utils

  class EmbeddingBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Writes given numpy splits; nothing to download."""

    name = NAME
    VERSION = tfds.core.Version(_VERSION)
    RELEASE_NOTES = {_VERSION: 'Embedded genotype splits.'}

    # tfds 4.9.10 looks up the builder's source file through `importlib_resources`,
    # a backport it only declares for Python < 3.9; there are no checksums to find.
    @tfds_utils.classproperty
    @classmethod
    def code_path(cls):
      return None

    # tfds prints these to stdout; gdiff logs.
    def _log_download_bytes(self):
      logging.info('dataset: writing %s', self.data_dir)

    def _log_download_done(self):
      logging.info('dataset: written %s', self.data_dir)

    def __init__(self, *, splits, classes, **kwargs):
      self._splits = splits
      self._classes = tuple(classes)
      super().__init__(**kwargs)

    def _info(self):
      emb_shape = next(iter(self._splits.values()))[0].shape[1:]
      return tfds.core.DatasetInfo(
        builder=self,
        description='gdiff embedded genotypes: normalised group PCA scores.',
        features=tfds.features.FeaturesDict(
          {
            'emb': tfds.features.Tensor(shape=emb_shape, dtype=np.float32),
            'label': tfds.features.Scalar(dtype=np.int32),
          }
        ),
        metadata=tfds.core.MetadataDict(classes=list(self._classes)),
        disable_shuffling=True,
      )  # keep cohort order: grain shuffles

    def _split_generators(self, dl_manager):
      del dl_manager
      return {
        name: self._generate_examples(emb, label) for name, (emb, label) in self._splits.items()
      }

    def _generate_examples(self, emb_NxGxC, label_N):
      for i in range(len(label_N)):
        yield i, {'emb': emb_NxGxC[i], 'label': np.int32(label_N[i])}

  return EmbeddingBuilder


def write_splits(emb_dir: str, splits: dict, classes) -> None:
  """Writes the embedded splits as an array_record TFDS dataset under emb_dir/tfds.

  Args:
    emb_dir: the embedding directory.
    splits: {split: (emb float32 (N, G, C), label int (N,))}; empty splits are skipped.
    classes: class names (stored as dataset metadata).
  """
  splits = {
    k: (np.asarray(e, np.float32), np.asarray(y, np.int32))
    for k, (e, y) in splits.items()
    if len(y)
  }
  builder = _builder_class()(
    splits=splits,
    classes=classes,
    data_dir=os.path.join(emb_dir, TFDS_DIR),
    file_format='array_record',
  )
  builder.download_and_prepare()
  logging.info('dataset: %s examples', {k: len(y) for k, (_, y) in splits.items()})


def _dataset_dir(emb_dir: str) -> str:
  return os.path.join(emb_dir, TFDS_DIR, NAME, _VERSION)


def data_source(emb_dir: str, split: str):
  """Random-access source of one split (tfds ArrayRecordDataSource).

  Args:
    emb_dir: the embedding directory.
    split: 'train', 'val' or 'test'.
  Returns:
    A source with len() and __getitem__ giving {'emb': (G, C) float32, 'label': int}.
  """
  path = _dataset_dir(emb_dir)
  if not os.path.isdir(path):
    raise errors.InputError(f'{path}: no embedded dataset (run --mode=prepare)')
  builder = _tfds().builder_from_directory(path)
  if split not in builder.info.splits:
    raise errors.InputError(f'{path}: no split {split!r} (have: {", ".join(builder.info.splits)})')
  return builder.as_data_source(split=split)


def _split_size(emb_dir: str, split: str) -> int | None:
  """Split size from the embedding manifest (None if there is no manifest)."""
  path = os.path.join(emb_dir, 'manifest.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f).get('splits', {}).get(split)


def load_split(emb_dir: str, split: str) -> dict:
  """A whole split in memory.

  Args:
    emb_dir: the embedding directory.
    split: 'train', 'val' or 'test'.
  Returns:
    {'emb': float32 (N, G, C), 'label': int32 (N,)} (numpy).
  """
  if _split_size(emb_dir, split) == 0:  # tfds stores no empty split
    with open(os.path.join(emb_dir, 'manifest.json')) as f:
      manifest = json.load(f)
    return {
      'emb': np.zeros((0, manifest['num_groups'], manifest['slots']), np.float32),
      'label': np.zeros((0,), np.int32),
    }
  source = data_source(emb_dir, split)
  records = source.__getitems__(list(range(len(source))))
  return {
    'emb': np.stack([r['emb'] for r in records]).astype(np.float32),
    'label': np.array([r['label'] for r in records], np.int32),
  }


class _ToArrays(grain.transforms.Map):
  """Fixes dtypes before batching (tfds gives the scalar label as a Python int)."""

  def map(self, element):
    return {
      'emb': np.asarray(element['emb'], np.float32),
      'label': np.asarray(element['label'], np.int32),
    }


def make_loader(
  emb_dir: str,
  split: str,
  batch_size: int,
  seed: int,
  num_epochs: int | None = None,
  shard_index: int = 0,
  shard_count: int = 1,
  shuffle: bool = True,
  drop_remainder: bool = True,
  worker_count: int = 0,
) -> grain.DataLoader:
  """A seeded, shardable, checkpointable loader of one split.

  Each shard (e.g. a JAX process) reads a disjoint part of the records; with
  `shuffle` the order is a seeded permutation that differs per epoch.

  Args:
    emb_dir: the embedding directory.
    split: 'train', 'val' or 'test'.
    batch_size: rows per batch (per shard).
    seed: shuffle seed.
    num_epochs: passes over the data; None repeats forever.
    shard_index, shard_count: this reader's shard.
    shuffle: shuffle records (False: cohort order, e.g. for evaluation).
    drop_remainder: drop a last partial batch (training needs fixed shapes).
    worker_count: grain worker processes (0: read in this process).
  Returns:
    grain.DataLoader; iter() yields {'emb': float32 (B, G, C), 'label': int32 (B,)}.
  """
  if batch_size < 1:
    raise errors.InputError(f'input.batch_size must be >= 1, got {batch_size}')
  if not 0 <= shard_index < shard_count:
    raise ValueError(f'shard_index {shard_index} not in [0, {shard_count})')
  source = data_source(emb_dir, split)
  shard_options = grain.sharding.ShardOptions(
    shard_index=shard_index, shard_count=shard_count, drop_remainder=True
  )
  sampler = grain.samplers.IndexSampler(
    num_records=len(source),
    shard_options=shard_options,
    shuffle=shuffle,
    num_epochs=num_epochs,
    seed=seed,
  )
  return grain.DataLoader(
    data_source=source,
    sampler=sampler,
    operations=[_ToArrays(), grain.transforms.Batch(batch_size, drop_remainder=drop_remainder)],
    worker_count=worker_count,
  )


class ShardGroupIterator:
  """Reads several data shards and stacks their batches row-wise, in shard order.

  The global batch at each step is then a function of `data_shards` alone, not
  of how many processes read it: with 2 shards, one process reading both gives
  the same global batches as two processes reading one each. This keeps
  training results independent of the process count (tested), while each
  process still reads only its own records.

  The state is JSON bytes holding each shard's grain state, so grain's orbax
  handler (`grain.checkpoint.CheckpointSave`) saves it per process.
  """

  def __init__(self, loaders):
    self._iterators = [iter(loader) for loader in loaders]

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    parts = [next(it) for it in self._iterators]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

  def get_state(self) -> bytes:
    states = [it.get_state().decode() for it in self._iterators]
    return json.dumps({'shards': states}).encode()

  def set_state(self, state: bytes) -> None:
    states = json.loads(state)['shards']
    if len(states) != len(self._iterators):
      raise ValueError(
        f'iterator state has {len(states)} shards, this reader {len(self._iterators)}'
      )
    for it, s in zip(self._iterators, states, strict=True):
      it.set_state(s.encode())

  def start_prefetch(self) -> None:
    """Called by grain's checkpoint handler after a restore; reading is lazy here."""


def process_shards(
  data_shards: int, global_batch_size: int, process_index: int, process_count: int
) -> range:
  """The data shards this process reads (`data_shards` 0: one per process).

  Raises:
    InputError: `data_shards` is not a multiple of the process count or does not
      divide the global batch.
  """
  data_shards = data_shards or process_count
  if data_shards % process_count or global_batch_size % data_shards:
    raise errors.InputError(
      f'input.data_shards={data_shards} must be a multiple of the process count '
      f'({process_count}) and divide input.batch_size={global_batch_size}'
    )
  per_process = data_shards // process_count
  return range(process_index * per_process, (process_index + 1) * per_process)
