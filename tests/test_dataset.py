"""Tests for gdiff.data.dataset: TFDS array_record round trip, grain order, resume, shards."""

import json
import os

import numpy as np
import pytest

from gdiff import errors
from gdiff.data import dataset

G, C = 4, 8
N_TRAIN = 40


@pytest.fixture(scope='module')
def emb_dir(tmp_path_factory):
  d = str(tmp_path_factory.mktemp('emb'))
  # Row i of train holds the value i everywhere, so batches reveal their record ids.
  train = np.repeat(np.arange(N_TRAIN, dtype=np.float32), G * C).reshape(N_TRAIN, G, C)
  val = -np.arange(6 * G * C, dtype=np.float32).reshape(6, G, C) / 7
  splits = {
    'train': (train, np.arange(N_TRAIN) % 3),
    'val': (val, np.array([2, 1, 0, 0, 1, 2])),
    'test': (np.zeros((0, G, C), np.float32), np.zeros(0, np.int32)),
  }
  dataset.write_splits(d, splits, classes=['a', 'b', 'c'])
  with open(os.path.join(d, 'manifest.json'), 'w') as f:
    json.dump({'num_groups': G, 'slots': C, 'splits': {'train': N_TRAIN, 'val': 6, 'test': 0}}, f)
  return d, splits


def _ids(batch):
  return batch['emb'][:, 0, 0].astype(int).tolist()


def test_load_split_roundtrip(emb_dir):
  d, splits = emb_dir
  for split in ('train', 'val'):
    got = dataset.load_split(d, split)
    assert got['emb'].dtype == np.float32 and got['label'].dtype == np.int32
    np.testing.assert_array_equal(got['emb'], splits[split][0])
    np.testing.assert_array_equal(got['label'], splits[split][1])
  empty = dataset.load_split(d, 'test')
  assert empty['emb'].shape == (0, G, C) and empty['label'].shape == (0,)


def test_missing_dataset_is_input_error(tmp_path):
  with pytest.raises(errors.InputError, match='no embedded dataset'):
    dataset.load_split(str(tmp_path), 'train')


def test_loader_seeded_order(emb_dir):
  d, splits = emb_dir

  def epoch(seed):
    return [_ids(b) for b in dataset.make_loader(d, 'train', 8, seed=seed, num_epochs=1)]

  first = epoch(1)
  assert len(first) == N_TRAIN // 8
  assert sorted(sum(first, [])) == list(range(N_TRAIN))  # a permutation of the records
  assert sum(first, []) != list(range(N_TRAIN))
  assert epoch(1) == first
  assert epoch(2) != first
  batch = next(iter(dataset.make_loader(d, 'train', 8, seed=1)))
  assert batch['emb'].shape == (8, G, C) and batch['emb'].dtype == np.float32
  assert batch['label'].dtype == np.int32
  np.testing.assert_array_equal(batch['label'], np.array(_ids(batch)) % 3)


def test_drop_remainder_and_unshuffled(emb_dir):
  d, _ = emb_dir
  batches = [
    _ids(b) for b in dataset.make_loader(d, 'train', 16, seed=0, num_epochs=1, shuffle=False)
  ]
  assert batches == [list(range(16)), list(range(16, 32))]  # 8 left over are dropped


def test_resume_from_state(emb_dir):
  d, _ = emb_dir
  loader = dataset.make_loader(d, 'train', 8, seed=3, num_epochs=3)
  it = iter(loader)
  for _ in range(7):  # into the second epoch
    next(it)
  state = it.get_state()
  rest = [_ids(b) for b in it]
  assert len(rest) == 3 * N_TRAIN // 8 - 7
  resumed = iter(dataset.make_loader(d, 'train', 8, seed=3, num_epochs=3))
  resumed.set_state(state)
  assert [_ids(b) for b in resumed] == rest


def test_shards_partition(emb_dir):
  d, _ = emb_dir
  seen = []
  for shard in range(2):
    ids = sum(
      (
        _ids(b)
        for b in dataset.make_loader(
          d, 'train', 4, seed=0, num_epochs=1, shard_index=shard, shard_count=2
        )
      ),
      [],
    )
    assert len(ids) == N_TRAIN // 2
    seen.append(set(ids))
  assert not seen[0] & seen[1]
  assert seen[0] | seen[1] == set(range(N_TRAIN))


def test_orbax_checkpoint_of_iterator(emb_dir, tmp_path):
  import grain
  import orbax.checkpoint as ocp

  d, _ = emb_dir
  it = iter(dataset.make_loader(d, 'train', 8, seed=5, num_epochs=2))
  for _ in range(3):
    next(it)
  manager = ocp.CheckpointManager(str(tmp_path / 'ckpt'))
  manager.save(3, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(it)))
  manager.wait_until_finished()
  rest = [_ids(b) for b in it]
  resumed = iter(dataset.make_loader(d, 'train', 8, seed=5, num_epochs=2))
  manager.restore(3, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(resumed)))
  assert [_ids(b) for b in resumed] == rest and len(rest) == 2 * N_TRAIN // 8 - 3
