"""Tests for gdiff.embedding.pca and gdiff.embedding.codec: exactness, calibration, jit."""

import dataclasses

import jax
import numpy as np
import pytest

from configs import base
from gdiff.data import cohort as cohort_lib
from gdiff.embedding import codec as codec_lib
from gdiff.embedding import fit, grouping, pca


def ld_genotypes(n, s, seed=0, copy=0.7):
  """Diploid genotypes with LD: each haplotype copies the previous SNP with prob `copy`."""
  rng = np.random.default_rng(seed)
  p = rng.uniform(0.05, 0.5, s)
  h = (rng.random((2 * n, s)) < p).astype(np.int8)
  for j in range(1, s):
    same = rng.random(2 * n) < copy
    h[same, j] = h[same, j - 1]
  return (h[:n] + h[n:]).astype(np.int8)


def variants(num_snps):
  half = num_snps // 2
  pos = np.r_[np.arange(half) * 100 + 1, np.arange(num_snps - half) * 100 + 1]
  return cohort_lib.Variants(
    chrom=np.array(['1'] * half + ['2'] * (num_snps - half)),
    pos=pos.astype(np.int64),
    id=np.array(['.'] * num_snps),
    ref=np.array(['A'] * num_snps),
    alt=np.array(['C'] * num_snps),
  )


def cfg(**kw):
  c = base.get_config().embedding
  c.update(kw)
  return c


@pytest.fixture(scope='module')
def data():
  x = ld_genotypes(160, 150)
  x[:100, 3] = 0  # monomorphic on train, polymorphic on val
  x[100:110, 3] = 1
  return x[:100], x[100:]


@pytest.fixture(scope='module')
def paper_codec(data):
  train, _ = data
  c = cfg(rule='paper', window_snps=24)
  return fit.fit_codec(train, grouping.make_groups(c, variants(train.shape[1])), c)


def test_full_rule_is_exact_on_held_out_rows(data):
  train, val = data
  c = cfg(rule='full', window_snps=8)
  groups = grouping.make_groups(c, variants(train.shape[1]))
  assert groups.sizes.max() <= 8
  codec = fit.fit_codec(train, groups, c)
  for decoder in codec_lib.DECODERS:
    np.testing.assert_array_equal(codec.decode(codec.encode(val), decoder=decoder), val)
    np.testing.assert_array_equal(codec.decode(codec.encode(train), decoder=decoder), train)


def test_shapes_mask_padding_and_normalisation(data, paper_codec):
  train, val = data
  codec = paper_codec
  # 75 SNPs per chromosome in windows of 24: sizes 24, 24, 24, 3 -> 8, 8, 8, 1 components
  assert codec.num_groups == 8 and codec.slots == 8  # 8 real groups, multiple of 8
  np.testing.assert_array_equal(codec.mask_GxC.sum(1), [8, 8, 8, 1] * 2)
  emb = codec.encode(train)
  assert emb.dtype == np.float32 and emb.shape == (100, 8, 8)
  assert (emb[:, ~codec.mask_GxC] == 0).all()
  assert (codec.encode(val)[:, ~codec.mask_GxC] == 0).all()
  real = emb[:, codec.mask_GxC]
  np.testing.assert_allclose(real.mean(0), 0, atol=1e-4)
  np.testing.assert_allclose(real.std(0), 1, atol=1e-3)
  # Loadings vanish beyond each group's components.
  comps = codec.mask_GxC.sum(1)[codec.group_S]
  beyond = np.arange(codec.slots)[None] >= comps[:, None]
  assert (codec.loadings_SxC[beyond] == 0).all()


def test_group_pca_matches_numpy(data):
  train, _ = data
  c = cfg(rule='fixed', fixed_components=3, window_snps=20)
  groups = grouping.make_groups(c, variants(train.shape[1]))
  fitted = pca.fit(train, groups, c)
  for g, snps in enumerate(groups.members()[:2]):
    x = train[:, snps].astype(np.float64)
    w, v = np.linalg.eigh(np.cov(x, rowvar=False))
    w, v = w[::-1][:3], v[:, ::-1][:, :3]
    pivot = np.abs(v).argmax(0)
    v = v * np.sign(v[pivot, np.arange(3)])  # the documented sign convention
    np.testing.assert_allclose(fitted.variance_GxC[g, :3], w, rtol=1e-4)
    np.testing.assert_allclose(fitted.loadings_SxC[snps, :3], v, atol=2e-4)
    np.testing.assert_allclose(fitted.mean_S[snps], x.mean(0), atol=1e-5)


def test_component_rules():
  sizes = np.array([1, 4, 5, 20, 21, 100])
  np.testing.assert_array_equal(pca.num_components(sizes, cfg(rule='paper')), [1, 1, 4, 4, 8, 8])
  np.testing.assert_array_equal(pca.num_components(sizes, cfg(rule='full')), [1, 4, 5, 8, 8, 8])
  np.testing.assert_array_equal(
    pca.num_components(sizes, cfg(rule='fixed', fixed_components=2)), [1, 2, 2, 2, 2, 2]
  )


def test_jit_equals_eager_and_blocks(data, paper_codec):
  train, val = data
  codec = paper_codec
  emb = codec.encode(val)
  emb_jit = jax.jit(codec_lib.encode_block)(codec, val)
  np.testing.assert_array_equal(np.asarray(emb_jit), emb)
  emb_method_jit = jax.jit(lambda c, x: c.encode(x))(codec, val)
  np.testing.assert_array_equal(np.asarray(emb_method_jit), emb)
  dec = codec.decode(emb)
  np.testing.assert_array_equal(np.asarray(jax.jit(codec_lib.decode_block)(codec, emb)), dec)
  assert dec.dtype == np.int8 and set(np.unique(dec)) <= {0, 1, 2}
  # Row blocks (last one padded) give the same answer and compile once.
  before = codec_lib._encode_jit._cache_size()
  np.testing.assert_array_equal(codec.encode(val, block_rows=7), emb)
  assert codec_lib._encode_jit._cache_size() == before + 1
  np.testing.assert_array_equal(codec.decode(emb, block_rows=7), dec)


def test_calibrated_decoder_matches_train_frequencies(data, paper_codec):
  train, _ = data
  codec = paper_codec

  def freq_error(decoder):
    dec = codec.decode(codec.encode(train), decoder=decoder)
    return np.mean([np.abs((dec == k).mean(0) - (train == k).mean(0)).mean() for k in range(3)])

  calibrated, rounded = freq_error('calibrated'), freq_error('round')
  assert rounded > 0.01  # the paper rule is lossy here
  assert calibrated < 0.25 * rounded, (calibrated, rounded)


def test_calibrate_thresholds_known_answer():
  recon = np.array([[0.1], [0.4], [0.45], [0.9], [1.2], [1.9]])
  real = np.array([[0], [0], [1], [1], [1], [2]])
  t = codec_lib.calibrate_thresholds(recon, real)
  np.testing.assert_allclose(t, [[0.425, 1.55]], rtol=1e-6)
  # No 2 on train: t2 falls back to 1.5 unless a train value lies above it.
  t = codec_lib.calibrate_thresholds(np.array([[0.0], [1.7]]), np.array([[0], [1]]))
  np.testing.assert_allclose(t, [[0.85, 1.7]], rtol=1e-6)


def test_save_load_roundtrip(tmp_path, paper_codec):
  path = str(tmp_path / 'codec.npz')
  paper_codec.save(path)
  loaded = codec_lib.Codec.load(path)
  assert loaded.decoder == paper_codec.decoder
  for name in (
    'group_S',
    'mean_S',
    'loadings_SxC',
    'emb_mean_GxC',
    'emb_std_GxC',
    'thresholds_Sx2',
    'mask_GxC',
    'genotype_cdf_Sx2',
  ):
    np.testing.assert_array_equal(getattr(loaded, name), getattr(paper_codec, name))


def test_matched_thresholds_give_train_frequencies_to_other_scores(data, paper_codec):
  train, _ = data
  codec = paper_codec
  np.testing.assert_allclose(codec.genotype_cdf_Sx2[:, 0], (train == 0).mean(0))
  np.testing.assert_allclose(codec.genotype_cdf_Sx2[:, 1], (train <= 1).mean(0))
  # On the train embedding itself, matching reproduces the fitted thresholds.
  emb = codec.encode(train)
  np.testing.assert_allclose(codec_lib.matched_thresholds(codec, emb), codec.thresholds_Sx2)
  # Shrunk, shifted, jittered (no ties) scores, as a generator may give, decode to other
  # frequencies with the train thresholds, and to the train ones (to the nearest count)
  # with matched thresholds, whatever the SNP block.
  jitter = 0.05 * np.random.default_rng(0).standard_normal(emb.shape)
  other = ((0.6 * emb + 0.3 + jitter) * codec.mask_GxC).astype(np.float32)
  matched = codec_lib.matched_thresholds(codec, other, snp_block=7)
  np.testing.assert_array_equal(matched, codec_lib.matched_thresholds(codec, other))
  dec = dataclasses.replace(codec, thresholds_Sx2=matched).decode(other)
  np.testing.assert_array_equal(
    np.stack([(dec == 0).sum(0), (dec <= 1).sum(0)], 1),
    np.rint(codec.genotype_cdf_Sx2 * len(train)),
  )
  assert np.abs(codec.decode(other).mean(0) - train.mean(0)).max() > 0.1


def test_snp_index_per_group(paper_codec):
  index = paper_codec.snp_index_GxK()
  assert index.shape == (8, 24)
  np.testing.assert_array_equal(index[0], np.arange(24))
  np.testing.assert_array_equal(index[3], [72, 73, 74] + [-1] * 21)
  np.testing.assert_array_equal(index[7, :3], [147, 148, 149])
