"""Tests of gdiff.rng: the stream table's keys and generators are the ones gdiff always drew.

The golden numbers below pin every stream: change one only on purpose, knowing that
checkpoints, synthetic cohorts and reports of earlier runs will then not reproduce.
"""

import zlib

import jax
import numpy as np
import pytest

from gdiff import rng

# jax.random.key_data of each stream of seed 3 (threefry2x32).
GOLDEN_KEYS = {
  'init': [3716834203, 3481239269],
  'train': [1946498123, 2217676430],
  'eval': [1024511538, 2603795180],
  'sample': [1837818339, 687718767],
  'ar_dp_noise': [3333337090, 506840166],
}


@pytest.mark.parametrize('name', sorted(rng.STREAMS))
def test_stream_keys_are_pinned(name):
  assert jax.random.key_data(rng.stream(3, name)).tolist() == GOLDEN_KEYS[name]


def test_streams_differ_and_fold_in_order():
  assert sorted(rng.STREAMS) == sorted(GOLDEN_KEYS)
  assert len(set(rng.STREAMS.values())) == len(rng.STREAMS)
  assert len(set(rng.STEP_STREAMS.values())) == len(rng.STEP_STREAMS)
  # The sampler's key: the 'sample' stream, then sample.seed (as before the table).
  before = jax.random.fold_in(
    jax.random.fold_in(jax.random.key(3), zlib.crc32(b'sample') & 0x7FFFFFFF), 5
  )
  assert (
    jax.random.key_data(rng.stream(3, 'sample', 5)).tolist()
    == jax.random.key_data(before).tolist()
    == [638393981, 1816457801]
  )
  assert (
    jax.random.key_data(rng.stream(3, 'sample', 5, 6)).tolist()
    != jax.random.key_data(rng.stream(3, 'sample', 6, 5)).tolist()
  )


def test_substream_of_a_train_step_is_pinned():
  step_key = jax.random.fold_in(rng.stream(3, 'train'), 7)
  key = jax.jit(lambda k: rng.substream(k, 'augment'))(step_key)
  assert jax.random.key_data(key).tolist() == [2098231323, 2792932419]


def test_classifier_init_key_equals_the_raw_key_it_replaced():
  raw = jax.random.fold_in(jax.random.PRNGKey(2000), 0)
  assert jax.random.key_data(rng.stream(2000, 'init')).tolist() == raw.tolist()


@pytest.mark.parametrize(
  'name,fold,seed_list,golden',
  [
    ('classifier_batches', (), [3, 3], [315, 102, 298, 319]),
    ('privacy_real_subset', (1, 50, 2), [3, 1, 50, 2], [252, 859, 739, 782]),
    ('sample_labels', (4,), [3, 4], [8, 898, 584, 455]),
    ('simulate_phenotype', (), [3, 1], [978, 253, 579, 407]),
  ],
)
def test_numpy_streams_are_pinned(name, fold, seed_list, golden):
  got = rng.numpy_stream(3, name, *fold).integers(0, 1000, 4).tolist()
  assert got == np.random.default_rng(seed_list).integers(0, 1000, 4).tolist() == golden


def test_classifier_seeds():
  assert rng.classifier_seeds(2, 3) == [2000, 2001, 2002]


def test_numbered_numpy_streams_differ():
  numbered = [v for v in rng.NUMPY_STREAMS.values() if v]
  assert len(set(numbered)) == len(numbered)
  draws = {
    name: rng.numpy_stream(0, name, 0).integers(0, 2**31, 2).tolist()
    for name, v in rng.NUMPY_STREAMS.items()
    if v
  }
  assert len({tuple(d) for d in draws.values()}) == len(draws)
