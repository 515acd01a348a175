"""The named random streams of a seed: every random draw of gdiff starts here.

JAX keys: `stream(seed, name, *fold)` is `jax.random.key(seed)` folded with
`STREAMS[name]`, then with each of `fold` in turn (a sample's seed, a step, a
person's id). Inside a train step, `substream(step_key, name)` splits off the
draws that are not the loss's own (`STEP_STREAMS`).

numpy generators: `numpy_stream(seed, name, *fold)` is
`np.random.default_rng([seed, *NUMPY_STREAMS[name], *fold])`.

The numbers are those gdiff has always used, so checkpoints, synthetic cohorts
and reports of earlier runs reproduce. A new stream takes a new name and a number
no other stream of its table uses. Seeds of their own, not streams of
`config.seed`: `data.simulate.seed` (its contigs draw from
`np.random.SeedSequence(seed)`, its phenotype from the 'simulate_phenotype' stream),
`data.split_seed` and `input.shuffle_seed`; `classifier_seeds` derives the
evaluation classifiers' seeds from `config.seed`.
"""

from __future__ import annotations

import zlib

import jax
import numpy as np

# Streams of the root key `jax.random.key(config.seed)`.
STREAMS = {
  'init': 0,  # network parameters (also each evaluation classifier's, from its own seed)
  'train': 1,  # the train step; the step folds in its number (a resumed run draws the same)
  'eval': 2,  # the val loss: the same t and noise at every evaluation
  'sample': zlib.crc32(b'sample') & 0x7FFFFFFF,  # folds in sample.seed, then each person's id
  'ar_dp_noise': zlib.crc32(b'ar_dp_noise') & 0x7FFFFFFF,  # gdiff.ar.dp: folds in the step
}
# Folded into one train step's key, apart from the draws of the loss (t, noise, label dropout).
STEP_STREAMS = {
  'augment': 1,  # recombination of the batch
}
# Folded into the 'sample' key (after sample.seed) for draws other than a sequence's own
# uniforms; the sequence ids folded there are int32 >= 0, so numbers >= 2**31 never meet one.
SAMPLE_STREAMS = {
  'ancestry': 2**31 + 1,  # then the person's row: the ar ancestry code (gdiff.ar.ancestry)
}
# numpy streams: the numbers after the seed, before `fold`. The first four take no
# number of their own (their `fold` follows the seed directly), as they always did.
NUMPY_STREAMS = {
  'sample_labels': (),  # fold: sample.seed; the order of the synthetic people's labels
  'privacy_rows': (),  # fold: 0 train, 1 held-out, 2 synthetic; evaluate.privacy_max_people
  'baseline': (),  # fold: the baseline's index in sorted(baselines.BASELINES)
  'privacy_real_subset': (),  # fold: 0 train / 1 held-out, size, repeat; NNAA's real subsets
  'classifier_batches': (3,),  # seed: the classifier's; its minibatch rows
  'stratified_fraction': (5,),
  'stratified_halves': (6,),  # the held-out split's select / report halves
  'privacy_subsample': (7,),  # NNAA's equal-size synthetic subsamples
  'two_sample_auc': (11,),  # the subsample of the larger side
  'detection': (13,),  # detection.detection_auc: its subsamples, then its folds
  'simulate_phenotype': (1,),  # seed: data.simulate.seed; causal SNPs, effects, noise
  'attacks': (160,),  # evaluate.attacks: the members, each member's left-out reference person
  'ar_dp_sampling': (17,),  # gdiff.ar.dp: the Poisson sample of people of every step
  'pca_sketch': (19,),  # evaluate.genetics.fit_pca: the randomized PCA's Gaussian test matrix
  'genome': (18,),  # evaluate.genome: the SNP pairs, the SNPs of each chromosome's PC1
}


def stream(seed: int, name: str, *fold: int) -> jax.Array:
  """The key of stream `name` of `seed`, folded with each of `fold` in turn."""
  key = jax.random.fold_in(jax.random.key(int(seed)), STREAMS[name])
  for f in fold:
    key = jax.random.fold_in(key, f)
  return key


def substream(step_key: jax.Array, name: str) -> jax.Array:
  """The key of `STEP_STREAMS[name]` within one train step (works inside jit)."""
  return jax.random.fold_in(step_key, STEP_STREAMS[name])


def sample_substream(sample_key: jax.Array, name: str) -> jax.Array:
  """The key of `SAMPLE_STREAMS[name]` within a 'sample' stream key."""
  return jax.random.fold_in(sample_key, SAMPLE_STREAMS[name])


def numpy_stream(seed: int, name: str, *fold: int) -> np.random.Generator:
  """A numpy generator for stream `name` of `seed`, folded with `fold`."""
  return np.random.default_rng([int(seed), *NUMPY_STREAMS[name], *map(int, fold)])


def classifier_seeds(seed: int, num: int) -> list[int]:
  """The seeds of an evaluation classifier's `num` runs (each its own 'init' and batches)."""
  return [int(seed) * 1000 + i for i in range(int(num))]
