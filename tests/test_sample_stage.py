"""The sample stage end to end on a tiny hand-made workdir.

Real cohort files (gdiff.data.cohort), a real fitted embedding (gdiff.embedding.fit)
and a real network (gdiff.models); only `gdiff.sample.restore_params` is replaced by
randomly initialised parameters, so no training run is needed.
"""

import filecmp
import gzip
import os
import shutil
import subprocess
import sys
import textwrap

import h5py
import jax
import numpy as np
import pytest

from configs import als
from gdiff import models, sample
from gdiff import workdir as wd
from gdiff.data import cohort as cohort_lib
from gdiff.embedding import fit
from gdiff.errors import InputError

N_PEOPLE, S = 90, 120
CLASSES = ('case', 'control')


def _config(**sample_overrides):
  c = als.get_config()
  c.generator = 'diffusion'  # this test is about the diffusion generator
  c.model.name = 'mlp'
  c.model.mlp_widths = (32, 16)
  c.model.norm_groups = 4
  c.diffusion.num_steps = 50
  c.embedding.window_snps = 8
  c.sample.method = 'ddim'
  c.sample.steps = 3
  c.sample.batch_size = 6
  c.sample.class_counts = 'case:7,control:4'
  c.sample.update(sample_overrides)
  return c


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  w = tmp_path_factory.mktemp('w')
  data_dir = os.path.join(w, 'data')
  os.makedirs(os.path.join(data_dir, cohort_lib.SHARD_DIR))
  rng = np.random.default_rng(0)
  labels = np.where(np.arange(N_PEOPLE) % 3 == 0, 'case', 'control')  # 30 case, 60 control
  split = np.array(['train'] * 70 + ['val'] * 10 + ['test'] * 10)
  cohort_lib.write_samples(data_dir, [f'p{i}' for i in range(N_PEOPLE)], labels, split)
  # Haplotype blocks, so the windows carry correlated SNPs.
  freq = rng.uniform(0.1, 0.9, S)
  dosage = rng.binomial(2, freq, (N_PEOPLE, S)).astype(np.int8)
  pos = np.r_[np.arange(1, 61) * 500, np.arange(1, 61) * 800].astype(np.int64)
  ref = rng.choice(list('ACGT'), S)
  alt = np.array([{'A': 'G', 'C': 'T', 'G': 'A', 'T': 'C'}[r] for r in ref])
  variants = cohort_lib.Variants(
    chrom=np.array(['1'] * 60 + ['2'] * 60),
    pos=pos,
    id=np.array([f'rs{i}' for i in range(S)]),
    ref=ref,
    alt=alt,
  )
  cohort_lib.write_shard(
    cohort_lib.shard_path(data_dir, 0), variants.take(slice(0, 70)), dosage[:, :70]
  )
  cohort_lib.write_shard(
    cohort_lib.shard_path(data_dir, 1), variants.take(slice(70, S)), dosage[:, 70:]
  )
  fit.fit_and_write(_config().embedding, data_dir, os.path.join(w, 'embedding'))
  return str(w)


_init = jax.jit(models.init_params, static_argnums=0)  # one compile, not one per op


@pytest.fixture(autouse=True)
def random_params(monkeypatch):
  def restore(config, workdir, which='best', use_ema=True, mesh=None):
    assert which == 'best' and use_ema
    mc = models.load_model_config(config, os.path.join(workdir, 'embedding'))
    return _init(mc, jax.random.key(0)), 123

  monkeypatch.setattr(sample, 'restore_params', restore)


def _copy(workdir, tmp_path, name):
  dst = str(tmp_path / name)
  shutil.copytree(workdir, dst, ignore=shutil.ignore_patterns('samples'))
  return dst


def test_stage_writes_consistent_files(workdir, tmp_path):
  w = _copy(workdir, tmp_path, 'a')
  sample.sample_and_export(_config(), w)
  out = os.path.join(w, 'samples')
  assert sorted(os.listdir(out)) == sorted(
    [
      wd.MARKER,
      'manifest.json',
      'synthetic.h5',
      'synthetic.vcf.gz',
      'synthetic.vcf.gz.tbi',
      'synthetic.bed',
      'synthetic.bim',
      'synthetic.fam',
      'synthetic.labels.tsv',
      'synthetic.pheno.tsv',
    ]
  )
  with h5py.File(os.path.join(out, 'synthetic.h5')) as f:
    dosage = f['dosage'][()]
    emb = f['emb'][()]
    samples = f['samples'].asstr()[()]
    labels = f['labels'].asstr()[()]
    label_ids = f['label_ids'][()]
    gt, phased = f['calldata/GT'][()], f['calldata/GT'].attrs['phased']
    chrom = f['variants/CHROM'].asstr()[()]
  mask = np.load(os.path.join(w, 'embedding', 'mask.npy'))
  assert dosage.shape == (11, S) and set(np.unique(dosage)) <= {0, 1, 2}
  # scikit-allel's layout, unphased (the lower allele first, as 0/1 in the VCF).
  assert not phased and gt.shape == (S, 11, 2) and np.all(gt[:, :, 0] <= gt[:, :, 1])
  np.testing.assert_array_equal(gt.sum(-1).T, dosage)
  assert chrom.tolist() == ['1'] * 60 + ['2'] * 60
  assert emb.shape == (11, *mask.shape) and np.all(emb[:, ~mask] == 0)
  assert np.all(np.abs(emb[:, mask]) > 0)  # every row was filled (incl. the padded batch)
  assert samples[0] == 'SYN000001' and samples[-1] == 'SYN000011'
  assert (labels == 'case').sum() == 7 and (labels == 'control').sum() == 4
  np.testing.assert_array_equal(np.array(CLASSES)[label_ids], labels)
  assert labels[:7].tolist() != ['case'] * 7  # shuffled
  tsv = [line.split('\t') for line in open(os.path.join(out, 'synthetic.labels.tsv'))]
  assert [(s, y.strip()) for s, y in tsv[1:]] == list(zip(samples, labels))
  # The decoded genotypes are the stored embedding decoded with thresholds matched on it:
  # every SNP has the train genotype frequencies (as counts of 11 people).
  from gdiff.embedding import codec as codec_lib

  codec = codec_lib.Codec.load(os.path.join(w, 'embedding', 'codec.npz'))
  matched, m = sample.matched_codec(codec, emb, 0)
  assert m == 11
  np.testing.assert_array_equal(matched.decode(emb), dosage)
  counts_Sx2 = np.stack([(dosage == 0).sum(0), (dosage <= 1).sum(0)], 1)
  np.testing.assert_array_equal(counts_Sx2, np.rint(codec.genotype_cdf_Sx2 * 11))
  assert not np.array_equal(codec.decode(emb), dosage)  # the train thresholds differ
  if shutil.which('bcftools'):
    stats = subprocess.run(
      ['bcftools', 'stats', os.path.join(out, 'synthetic.vcf.gz')],
      check=True,
      capture_output=True,
      text=True,
    ).stdout
    assert 'number of samples:\t11\n' in stats and f'number of records:\t{S}\n' in stats
  if shutil.which('plink2'):
    prefix = os.path.join(out, 'synthetic')
    subprocess.run(
      ['plink2', '--bfile', prefix, '--freq', '--threads', '1', '--out', str(tmp_path / 'f')],
      check=True,
      capture_output=True,
    )
    freq = np.loadtxt(tmp_path / 'f.afreq', usecols=4, skiprows=1)
    np.testing.assert_allclose(freq, dosage.mean(0) / 2, atol=1e-6)


def _vcf_lines(path):
  with gzip.open(path, 'rt') as f:
    return f.read().splitlines()


def test_same_seed_same_bytes_other_seed_other_people(workdir, tmp_path):
  a, b, c = (_copy(workdir, tmp_path, n) for n in 'abc')
  sample.sample_and_export(_config(), a)
  sample.sample_and_export(_config(batch_size=4), b)  # batch size must not matter
  names = sorted(os.listdir(os.path.join(a, 'samples')))
  names.remove('manifest.json')
  _, mismatch, errors = filecmp.cmpfiles(
    os.path.join(a, 'samples'), os.path.join(b, 'samples'), names, shallow=False
  )
  # The VCF header names the config's hash, and sample.batch_size is part of the config.
  assert mismatch == ['synthetic.vcf.gz'] and not errors
  vcfs = [_vcf_lines(os.path.join(w, 'samples', 'synthetic.vcf.gz')) for w in (a, b)]
  assert [[x for x in v if not x.startswith('##gdiffConfigHash=')] for v in vcfs] == [
    [x for x in v if not x.startswith('##gdiffConfigHash=')] for v in vcfs[::-1]
  ]
  assert vcfs[0] != vcfs[1]
  sample.sample_and_export(_config(seed=1), c)
  with (
    h5py.File(os.path.join(a, 'samples', 'synthetic.h5')) as fa,
    h5py.File(os.path.join(c, 'samples', 'synthetic.h5')) as fc,
  ):
    assert not np.array_equal(fa['emb'][()], fc['emb'][()])


def test_train_thresholds_and_calibration_subset(workdir, tmp_path):
  from gdiff.embedding import codec as codec_lib

  w = _copy(workdir, tmp_path, 'a')
  codec = codec_lib.Codec.load(os.path.join(w, 'embedding', 'codec.npz'))
  sample.sample_and_export(_config(decode_thresholds='train'), w)
  with h5py.File(os.path.join(w, 'samples', 'synthetic.h5')) as f:
    emb, dosage = f['emb'][()], f['dosage'][()]
  np.testing.assert_array_equal(codec.decode(emb), dosage)  # the codec's own thresholds
  # Calibrated on the first 5 people only: their thresholds decode all 11.
  sample.sample_and_export(_config(calibration_people=5), w)
  with h5py.File(os.path.join(w, 'samples', 'synthetic.h5')) as f:
    np.testing.assert_array_equal(f['emb'][()], emb)
    dosage = f['dosage'][()]
  matched, m = sample.matched_codec(codec, emb, 5)
  assert m == 5
  np.testing.assert_array_equal(matched.decode(emb), dosage)


def test_class_counts_from_num_and_train_proportions(workdir):
  cohort = cohort_lib.load_cohort(os.path.join(workdir, 'data'))
  # train: rows 0..69, every third a case -> 24 case, 46 control.
  assert sample.class_counts(_config(class_counts='', num=0).sample, cohort) == {
    'case': 24,
    'control': 46,
  }
  # 10 * 24/70 = 3.43, 10 * 46/70 = 6.57 -> 3 + 7.
  assert sample.class_counts(_config(class_counts='', num=10).sample, cohort) == {
    'case': 3,
    'control': 7,
  }
  np.testing.assert_array_equal(sample.proportional_counts(7, [1, 1, 1]), [3, 2, 2])
  np.testing.assert_array_equal(sample.proportional_counts(100, [1, 2, 7]), [10, 20, 70])
  ids = sample.draw_labels({'case': 3, 'control': 5}, CLASSES, 0)
  assert np.bincount(ids).tolist() == [3, 5]
  np.testing.assert_array_equal(ids, sample.draw_labels({'case': 3, 'control': 5}, CLASSES, 0))


@pytest.mark.parametrize(
  'overrides,match',
  [
    (dict(class_counts='case:3,ctrl:2'), 'unknown class'),
    (dict(class_counts='case=3'), 'LABEL:COUNT'),
    (dict(class_counts='case:0'), 'no samples'),
    (dict(method='euler'), 'sample.method'),
    (dict(steps=51), 'sample.steps'),
    (dict(clip_x0=-1.0), 'sample.clip_x0'),
    (dict(decode_thresholds='quantile'), 'sample.decode_thresholds'),
  ],
)
def test_bad_config_is_one_line_input_error(workdir, overrides, match):
  with pytest.raises(InputError, match=match):
    sample.sample_and_export(_config(**overrides), workdir)


_MEMORY_SCRIPT = textwrap.dedent('''
    import os, sys
    import jax, jax.numpy as jnp, numpy as np
    from gdiff import diffusion, distributed, export, sampling, sample
    tmp = sys.argv[1]
    G, C, S = 512, 8, 32
    sched = diffusion.make_schedule('cosine', 10)
    fn = sampling.make_sampler('ddim', lambda p, x, t, y: p * x, sched, np.ones((G, C)), steps=2)
    mesh = distributed.make_mesh()
    run = lambda y, ids: fn(jnp.float32(0.1), jax.random.key(0), y, ids)
    decode = lambda emb: (emb[:, :S // C].reshape(len(emb), S) > 0).astype(np.int8)
    page = os.sysconf('SC_PAGE_SIZE') / 2**20
    def rss():  # resident MiB now (ru_maxrss would report the compiler's peak instead)
      return int(open('/proc/self/statm').read().split()[1]) * page
    def stage(n, leak):
      """Peak RSS over the batches of one run of n people, written as the stage does."""
      kept, peak = [], [0.0]
      with export.H5Cohort(f'{tmp}/{n}.h5', n, S, (G, C), ['a']) as h5:
        def sink(lo, d, emb):
          h5.write_rows(lo, d, emb)
          if leak:
            kept.append(emb.copy())
          peak[0] = max(peak[0], rss())
        sample.generate(run, decode, np.zeros(n, np.int32), 128, mesh, sink)
      return peak[0]
    stage(128, False)  # compile
    print(stage(1000, False), stage(4000, False), stage(4000, True))
''')


@pytest.mark.skipif(not os.path.exists('/proc/self/statm'), reason='needs Linux /proc')
def test_memory_does_not_grow_with_num_samples(tmp_path):
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2', JAX_PLATFORMS='cpu')
  out = subprocess.run(
    [sys.executable, '-c', _MEMORY_SCRIPT, str(tmp_path)],
    check=True,
    env=env,
    capture_output=True,
    text=True,
    cwd=os.path.dirname(os.path.dirname(__file__)),
  ).stdout
  small, large, leaky = map(float, out.split())
  # Holding every embedding would add 3000 * 16 KiB = 47 MiB for 4x the people. We allow
  # 10 MiB; the control that keeps the embeddings must exceed 30.
  assert large - small < 10, (small, large)
  assert leaky - large > 30, (small, large, leaky)


def test_sampling_builds_no_trainer():
  # Stages depend downward: sampling restores parameters without the train stage's code
  # or an optimizer (a fresh interpreter, as this one has imported gdiff.train already).
  script = (
    'import sys; import gdiff.sample; '
    'print(sorted({"gdiff.train", "gdiff.train_state", "optax"} & set(sys.modules)))'
  )
  out = subprocess.run(
    [sys.executable, '-c', script],
    check=True,
    capture_output=True,
    text=True,
    cwd=os.path.dirname(os.path.dirname(__file__)),
  ).stdout
  assert out.strip() == '[]'
