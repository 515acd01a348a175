"""Tests for gdiff.augment.recombine: two-person, same-class mosaics at group boundaries."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdiff import augment


def _people(b, g, c=3):
  """Example i holds the value i + 1 in every real entry; the last slot is padding (0)."""
  x = np.repeat(np.arange(1, b + 1, dtype=np.float32)[:, None, None], g, 1)
  x = np.repeat(x, c, 2)
  x[:, :, -1] = 0.0
  return x


def test_mosaics_of_two_same_class_people_with_geometric_segments():
  b, g, seg = 24, 400, 5.0
  label = np.array([0] * 10 + [1] * 13 + [2])  # class 2 has one member: it stays itself
  x = _people(b, g)
  y = np.asarray(augment.recombine(jax.random.key(0), jnp.asarray(x), jnp.asarray(label), seg))
  assert y.shape == x.shape and np.all(y[:, :, -1] == 0)  # padding stays zero
  src = y[:, :, 0].astype(int) - 1  # which person each group came from
  switches = []
  for i in range(b):
    people = set(src[i].tolist())
    assert i in people
    assert len(people) <= 2
    assert all(label[p] == label[i] for p in people)
    switches.append(np.count_nonzero(np.diff(src[i])))
  np.testing.assert_array_equal(src[-1], b - 1)
  # Switch probability 1/seg per boundary: about (g - 1) / seg switches per person.
  mean = np.mean(switches[:-1])
  assert abs(mean - (g - 1) / seg) < 0.15 * (g - 1) / seg, mean


def test_prob_zero_is_the_identity_and_keys_change_the_mosaic():
  x, label = jnp.asarray(_people(8, 50)), jnp.zeros(8, jnp.int32)
  same = augment.recombine(jax.random.key(1), x, label, 4.0, prob=0.0)
  np.testing.assert_array_equal(same, x)
  a = augment.recombine(jax.random.key(1), x, label, 4.0)
  b = augment.recombine(jax.random.key(2), x, label, 4.0)
  assert not np.array_equal(a, b)
  np.testing.assert_array_equal(a, augment.recombine(jax.random.key(1), x, label, 4.0))


@pytest.mark.parametrize('prob', [0.25, 0.75])
def test_prob_sets_the_share_of_changed_examples(prob):
  b = 400
  x, label = jnp.asarray(_people(b, 60)), jnp.zeros(b, jnp.int32)
  y = np.asarray(augment.recombine(jax.random.key(3), x, label, 2.0, prob=prob))
  changed = np.any(y != np.asarray(x), axis=(1, 2)).mean()
  # A chosen example stays whole only if it never switches away (~2^-30 here).
  assert abs(changed - prob) < 0.08, changed
