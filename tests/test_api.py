"""gdiff.load on tiny finished workdirs of both generators: draw, reproduce W/samples/, write.

Each workdir is made by the real stages (prepare, train, sample) on a tiny simulated
cohort; `load(W).sample` at the sample stage's size and seed must give the stage's
people, and `write` must give files scikit-allel, bcftools and plink2 read back.
"""

import dataclasses
import os
import shutil
import subprocess

import allel
import h5py
import numpy as np
import pytest

import gdiff
from configs import als, kg1
from gdiff import api, pipeline
from gdiff import workdir as wd
from gdiff.data import cohort as cohort_lib
from gdiff.errors import InputError


def _ar_config():
  c = kg1.get_config()
  s = c.data.simulate
  s.samples_per_population = (8, 8, 8, 8)
  s.num_contigs = 2
  s.contig_length = 200_000
  s.max_snps_per_contig = 24
  c.ar.context_snps = (2,)
  c.ar.max_iter = 20
  c.ar.block_snps = 16
  c.sample.seed = 3
  return c


def _diffusion_config():
  c = als.get_config()
  c.generator = 'diffusion'
  s = c.data.simulate
  s.num_samples = 40
  s.num_contigs = 1
  s.max_snps_per_contig = 48
  c.embedding.window_snps = 8
  c.model.name = 'mlp'
  c.model.mlp_widths = (16, 8)
  c.model.norm_groups = 4
  c.diffusion.num_steps = 20
  c.input.batch_size = 8
  c.train.num_steps = 2
  c.train.eval_every = 0
  c.train.checkpoint_every = 1
  c.train.log_every = 1
  c.sample.method = 'ddim'
  c.sample.steps = 2
  c.sample.batch_size = 8
  c.sample.num = 10
  c.sample.seed = 4
  c.sample.calibration_people = 6
  return c


CONFIGS = {'ar': _ar_config, 'diffusion': _diffusion_config}


@pytest.fixture(scope='module', params=sorted(CONFIGS))
def run(request, tmp_path_factory):
  w = str(tmp_path_factory.mktemp(request.param))
  config = CONFIGS[request.param]()
  for mode in ('prepare', 'train', 'sample'):
    pipeline.run(config, w, mode)
  return request.param, config, w


def _stage_cohort(w):
  with h5py.File(os.path.join(w, 'samples', 'synthetic.h5')) as f:
    return f['dosage'][()], f['labels'].asstr()[()]


def test_sample_with_the_stage_seed_gives_the_stages_people(run):
  generator, config, w = run
  model = gdiff.load(w)
  assert model.generator == generator
  stage_dosage, stage_labels = _stage_cohort(w)
  n = len(stage_dosage)
  dosage, labels = model.sample(n, seed=config.sample.seed, batch_size=5)
  np.testing.assert_array_equal(dosage, stage_dosage)
  assert labels.tolist() == stage_labels.tolist()
  other, _ = model.sample(n, seed=config.sample.seed + 1)
  assert other.shape == dosage.shape and not np.array_equal(other, dosage)


def test_class_counts_and_bad_requests(run):
  _, _, w = run
  model = gdiff.load(w)
  a, b = model.classes[:2]
  dosage, labels = model.sample(class_counts={a: 3, b: 2}, seed=5)
  assert dosage.shape == (5, len(model.variants)) and dosage.dtype == np.int8
  assert sorted(labels.tolist()) == sorted([a] * 3 + [b] * 2)
  assert set(np.unique(dosage)) <= {0, 1, 2}
  with pytest.raises(InputError, match=r"class_counts \['XXX'\]"):
    model.sample(class_counts={'XXX': 1})
  with pytest.raises(InputError, match='must be >= 0'):
    model.sample(-1)
  with pytest.raises(InputError, match='seed=-2'):
    model.sample(3, seed=-2)
  with pytest.raises(InputError, match='formats'):
    model.write(os.path.join(w, 'x'), dosage, labels, formats=('bgen',))
  with pytest.raises(InputError, match='expected'):
    model.write(os.path.join(w, 'x'), dosage[:, 1:], labels)


def test_write_is_read_back_by_allel_bcftools_and_plink2(run, tmp_path):
  generator, config, w = run
  model = gdiff.load(w)
  dosage, labels = model.sample(7, seed=2)
  prefix = str(tmp_path / 'out' / 'cohort')
  paths = model.write(prefix, dosage, labels)
  names = sorted(os.path.basename(p) for p in paths)
  assert names == sorted(
    f'cohort{e}' for e in ('.vcf.gz', '.vcf.gz.tbi', '.bed', '.bim', '.fam', '.h5')
  )
  vcf = allel.read_vcf(prefix + '.vcf.gz', fields=['calldata/GT', 'samples'])
  np.testing.assert_array_equal(allel.GenotypeArray(vcf['calldata/GT']).to_n_alt().T, dosage)
  with h5py.File(prefix + '.h5') as f:
    np.testing.assert_array_equal(f['dosage'][()], dosage)
    assert f['labels'].asstr()[()].tolist() == labels.tolist()
  if shutil.which('bcftools'):
    header = subprocess.run(
      ['bcftools', 'view', '-h', prefix + '.vcf.gz'], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert f'##gdiffGenerator={generator}' in header
    assert '##gdiffSeed=seed=0,sample.seed=2' in header
    assert any(h.startswith('##gdiffConfigHash=') and len(h) == 18 + 16 for h in header)
    assert any(h.startswith('##syntheticData=') for h in header)
    # Diffusion: the checkpoint's step (train.num_steps=2, no val: the latest).
    assert ('##gdiffCheckpointStep=2' in header) == (generator == 'diffusion')
    stage_header = subprocess.run(
      ['bcftools', 'view', '-h', os.path.join(w, 'samples', 'synthetic.vcf.gz')],
      check=True,
      capture_output=True,
      text=True,
    ).stdout.splitlines()
    # The stage's hash is its run's: the one its stage record keeps.
    record = wd.read_record(w, 'sample')
    assert f'##gdiffConfigHash={record["config_hash"]}' in stage_header
    assert record['config_hash'] == wd.config_hash(config)
    assert ('##gdiffCheckpointStep=2' in stage_header) == (generator == 'diffusion')
    # No local path in a shared file (bcftools adds its own command line when it shows one).
    assert not any(w in h for h in stage_header if not h.startswith('##bcftools'))
    body = subprocess.run(
      ['bcftools', 'query', '-f', '[%GT ]\n', prefix + '.vcf.gz'],
      check=True,
      capture_output=True,
      text=True,
    ).stdout.splitlines()
    assert len(body) == len(model.variants)
    # Haplotypes drawn: phased, as the sample stage writes them.
    assert ('|' in body[0]) == (model.unit == 'haplotype')
  if shutil.which('plink2'):
    out = str(tmp_path / 'freq')
    subprocess.run(
      ['plink2', '--bfile', prefix, '--freq', 'counts', '--out', out],
      check=True,
      capture_output=True,
    )
    with open(out + '.acount') as f:
      rows = [line.split() for line in f if not line.startswith('#')]
    alt_counts = np.array([int(r[-2]) for r in rows])
    np.testing.assert_array_equal(alt_counts, dosage.sum(0))


def test_load_refuses_what_it_cannot_load(tmp_path):
  with pytest.raises(InputError, match='no finished train stage'):
    gdiff.load(str(tmp_path))


def test_the_run_config_is_the_recorded_one(run):
  generator, config, w = run
  model = gdiff.load(w)
  assert wd.config_hash(model.config) == wd.config_hash(config)


def test_sample_runs_the_release_gate(run, monkeypatch):
  """A training person planted among the drawn people is redrawn, as the stage's gate does."""
  generator, _, w = run
  model = gdiff.load(w)
  model.config.sample.gate.distance_min_heldout = 1  # the tiny val split: rule on anyway
  model.config.sample.gate.max_fraction = 0.5
  # 48 SNPs put many drawn people near a training one: only exact copies are flagged here.
  model._gate = dataclasses.replace(model._gate_reference(), distance_threshold=0.5)
  train = cohort_lib.load_cohort(wd.Layout(w).data).dosages('train')
  real_draw = api.DRAWS[generator]

  def planted(model_, config, label_ids, first_id=0, calibration=None, keep_manifest=True):
    rows = real_draw(model_, config, label_ids, first_id, calibration, keep_manifest)
    if first_id == 0:
      rows.file['dosage'][0] = train[0]
    return rows

  monkeypatch.setitem(api.DRAWS, generator, planted)
  kept, _ = model.sample(20, seed=1, gate=False)
  assert (kept[0] == train[0]).all()
  dosage, _ = model.sample(20, seed=1)
  assert not (dosage == train[0]).all(1).any()
  counts = model._last.manifest['gate']
  assert counts['replaced_people'] >= 1 and counts['draw_ids_used'] > 20
