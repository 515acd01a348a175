"""Tests for gdiff.embedding.fit: files written, train-only fitting, dataset = encode(cohort)."""

import json
import os

import numpy as np
import pytest

from configs import base
from gdiff.data import cohort as cohort_lib
from gdiff.data import dataset
from gdiff.embedding import codec as codec_lib
from gdiff.embedding import fit

N, S = 120, 160


def _genotypes(seed):
  rng = np.random.default_rng(seed)
  p = rng.uniform(0.05, 0.5, S)
  h = (rng.random((2 * N, S)) < p).astype(np.int8)
  for j in range(1, S):
    same = rng.random(2 * N) < 0.7
    h[same, j] = h[same, j - 1]
  return (h[:N] + h[N:]).astype(np.int8)


def _write_cohort(directory, dosage):
  os.makedirs(os.path.join(directory, cohort_lib.SHARD_DIR), exist_ok=True)
  split = np.array(['train'] * 80 + ['val'] * 20 + ['test'] * 20)
  split = split[np.random.default_rng(5).permutation(N)]  # splits interleaved
  labels = np.array(['case', 'control'])[np.arange(N) % 2]
  cohort_lib.write_samples(directory, [f'S{i}' for i in range(N)], labels, split)
  half = S // 2
  for k, (chrom, cols) in enumerate([('chr1', slice(0, half)), ('chr2', slice(half, S))]):
    pos = np.arange(half, dtype=np.int64) * 1000 + 1
    v = cohort_lib.Variants(
      chrom=np.array([chrom] * half),
      pos=pos,
      id=np.array([f'{chrom}_{p}' for p in pos]),
      ref=np.array(['A'] * half),
      alt=np.array(['G'] * half),
    )
    cohort_lib.write_shard(cohort_lib.shard_path(directory, k), v, dosage[:, cols])
  return split


@pytest.fixture(scope='module')
def fitted(tmp_path_factory):
  root = tmp_path_factory.mktemp('fit')
  dosage = _genotypes(0)
  split = _write_cohort(str(root / 'data'), dosage)
  cfg = base.get_config().embedding
  cfg.window_snps = 16
  codec = fit.fit_and_write(cfg, str(root / 'data'), str(root / 'embedding'))
  return root, dosage, split, cfg, codec


def test_files_and_manifest(fitted):
  root, dosage, split, _, codec = fitted
  emb_dir = str(root / 'embedding')
  assert sorted(os.listdir(root)) == ['data', 'embedding']  # no temporary left behind
  with open(os.path.join(emb_dir, 'manifest.json')) as f:
    manifest = json.load(f)
  assert manifest['num_groups'] == 16 and manifest['slots'] == 8  # 10 windows -> 16
  assert manifest['num_real_groups'] == 10
  assert manifest['classes'] == ['case', 'control']
  assert manifest['splits'] == {'train': 80, 'val': 20, 'test': 20}
  assert manifest['group_size_histogram']['9-16'] == 10
  assert manifest['real_entries'] == 10 * 4  # 16-SNP groups keep 4 components (paper rule)
  val_quality = manifest['reconstruction']['val']['calibrated']
  assert 0.6 < val_quality['concordance'] < 1.0
  mask = np.load(os.path.join(emb_dir, 'mask.npy'))
  np.testing.assert_array_equal(mask, codec.mask_GxC)
  loaded = codec_lib.Codec.load(os.path.join(emb_dir, 'codec.npz'))
  np.testing.assert_array_equal(loaded.loadings_SxC, codec.loadings_SxC)
  with open(os.path.join(emb_dir, 'groups.tsv')) as f:
    assert len(f.readlines()) == 1 + 10


def test_dataset_is_encoded_cohort(fitted):
  root, dosage, split, _, codec = fitted
  labels = np.arange(N) % 2  # classes sorted: case=0, control=1
  for name in cohort_lib.SPLITS:
    got = dataset.load_split(str(root / 'embedding'), name)
    rows = split == name
    np.testing.assert_array_equal(got['emb'], codec.encode(dosage[rows]))
    np.testing.assert_array_equal(got['label'], labels[rows])


def test_fit_sees_train_rows_only(fitted, tmp_path):
  root, dosage, split, cfg, codec = fitted
  garbage = dosage.copy()
  held_out = split != 'train'
  garbage[held_out] = np.random.default_rng(9).integers(0, 3, garbage[held_out].shape)
  _write_cohort(str(tmp_path / 'data'), garbage)
  other = fit.fit_and_write(cfg, str(tmp_path / 'data'), str(tmp_path / 'embedding'))
  for name in (
    'group_S',
    'mean_S',
    'loadings_SxC',
    'emb_mean_GxC',
    'emb_std_GxC',
    'thresholds_Sx2',
    'mask_GxC',
  ):
    np.testing.assert_array_equal(getattr(other, name), getattr(codec, name), err_msg=name)
  train = dataset.load_split(str(tmp_path / 'embedding'), 'train')
  np.testing.assert_array_equal(train['emb'], codec.encode(dosage[split == 'train']))
  val = dataset.load_split(str(tmp_path / 'embedding'), 'val')
  assert not np.array_equal(val['emb'], codec.encode(dosage[split == 'val']))


def test_rewrite_replaces(fitted):
  root, _, _, cfg, _ = fitted
  cfg = cfg.copy_and_resolve_references()
  cfg.rule = 'full'
  cfg.window_snps = 8
  codec = fit.fit_and_write(cfg, str(root / 'data'), str(root / 'embedding'))
  with open(os.path.join(root / 'embedding', 'manifest.json')) as f:
    manifest = json.load(f)
  assert manifest['rule'] == 'full' and manifest['num_groups'] == 24  # 20 windows -> 24
  assert manifest['reconstruction']['val']['calibrated']['concordance'] == 1.0
  assert codec.mask_GxC.sum() == S
