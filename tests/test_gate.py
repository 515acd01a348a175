"""The release gate and KING-robust kinship (gdiff.privacy) on a simulated family.

One simulated population; two parents (not in any split) have two children: one
child is a training person, the other is planted among the synthetic people next
to an exact copy of another training person. KING must equal plink2's
--make-king-table, and the gate must drop exactly the copy and the sibling.
"""

import json
import os
import shutil
import subprocess

import h5py
import numpy as np
import pytest

from configs import base
from gdiff.data import cohort as cohort_lib
from gdiff.data import simulate, writers
from gdiff.errors import InputError
from gdiff.privacy import gate, kinship

N_TRAIN, N_VAL, N_ORDINARY = 30, 60, 10
SEGMENTS = 4  # segments per contig: siblings share close to half of each parent's genome, as
# over a whole genome (a 1 Mb contig alone would rarely see a crossover)


def _meiosis(rng, haps_2xS, contig_ends):
  """One transmitted haplotype: the parent's two haplotypes, switching at random points."""
  out = np.empty(haps_2xS.shape[1], np.int8)
  lo = 0
  for hi in contig_ends:
    cuts = np.sort(rng.choice(np.arange(lo + 1, hi), SEGMENTS - 1, replace=False))
    for k, (a, b) in enumerate(zip(np.r_[lo, cuts], np.r_[cuts, hi])):
      out[a:b] = haps_2xS[(k + rng.integers(2)) % 2, a:b]
    lo = hi
  return out


@pytest.fixture(scope='module')
def family():
  sim = base.get_config().data.simulate
  sim.populations = ('CEU',)
  sim.samples_per_population = (2 + N_TRAIN + N_VAL + N_ORDINARY + 4,)
  # Many short contigs: unrelated people share little IBD, as over a whole genome (two
  # long contigs give unrelated pairs second-degree kinship by chance).
  sim.num_contigs = 22  # autosomes: plink2 reads contigs 23, 24 as X, Y
  sim.contig_length = 1_000_000
  sim.max_snps_per_contig = 60
  sim.seed = 7
  cohort = simulate.simulate(sim)
  haps = np.concatenate([c.haplotypes_Sx2N for c in cohort.contigs]).T  # (2N, S)
  haps = haps.reshape(-1, 2, haps.shape[1])
  ends = np.cumsum([len(c.pos) for c in cohort.contigs])
  rng = np.random.default_rng(0)
  mother, father, people = haps[0], haps[1], haps[2:]
  children = [
    np.stack([_meiosis(rng, mother, ends), _meiosis(rng, father, ends)]) for _ in range(2)
  ]
  dosage = lambda h: h.sum(-2).astype(np.int8)
  train = np.concatenate([dosage(people[:N_TRAIN]), dosage(children[0])[None]])
  val = dosage(people[N_TRAIN : N_TRAIN + N_VAL])
  ordinary = dosage(people[N_TRAIN + N_VAL : N_TRAIN + N_VAL + N_ORDINARY])
  fresh = dosage(people[N_TRAIN + N_VAL + N_ORDINARY :])  # unrelated people to redraw
  variants = cohort_lib.Variants.concatenate([simulate.contig_variants(c) for c in cohort.contigs])
  return dict(
    train=train,
    val=val,
    ordinary=ordinary,
    fresh=fresh,
    sibling=dosage(children[1]),
    parents=dosage(np.stack([mother, father])),
    variants=variants,
  )


def _gate_config(**overrides):
  c = base.get_config().sample.gate
  c.update(overrides)
  return gate.GateConfig.from_config(c)


@pytest.mark.skipif(not shutil.which('plink2'), reason='plink2 not on PATH')
def test_king_robust_equals_plink2_make_king_table(family, tmp_path):
  people = np.concatenate(
    [family['train'][-6:], family['sibling'][None], family['parents'], family['val'][:5]]
  )
  ids = [f'p{i}' for i in range(len(people))]
  stem = str(tmp_path / 'c')
  writers.write_plink(stem, people, family['variants'], ids)
  subprocess.run(
    ['plink2', '--bfile', stem, '--make-king-table', '--threads', '1', '--out', stem],
    check=True,
    capture_output=True,
  )
  with open(stem + '.kin0') as f:
    header, *rows = [line.rstrip('\n').split('\t') for line in f]
  col = {name: k for k, name in enumerate(header)}
  i = np.array([ids.index(r[col['IID1']]) for r in rows])
  j = np.array([ids.index(r[col['IID2']]) for r in rows])
  plink = np.array([float(r[col['KINSHIP']]) for r in rows])
  assert len(rows) == len(people) * (len(people) - 1) // 2
  mine = kinship.king(people, people)
  np.testing.assert_allclose(mine[i, j], plink, atol=1e-4)
  np.testing.assert_allclose(mine, mine.T, atol=1e-6)
  # The family is there: sibling-sibling and parent-child are first degree, the rest not.
  child, sibling, mother, father = 5, 6, 7, 8  # rows of `people`
  for a, b in ((child, sibling), (sibling, mother), (sibling, father), (child, mother)):
    assert 0.177 < mine[a, b] < 0.354, (a, b, mine[a, b])
  assert abs(mine[mother, father]) < 0.0884
  unrelated = mine[np.ix_(range(9, 14), range(9, 14))][~np.eye(5, dtype=bool)]
  assert unrelated.max() < 0.0884


def test_blocked_relatives_equal_the_full_matrix(family):
  query = np.concatenate([family['ordinary'], family['sibling'][None], family['train'][:3]])
  full = kinship.king(query, family['train'])
  best, index, pairs = kinship.relatives(query, family['train'], block_size=8)
  np.testing.assert_allclose(best, full.max(1), atol=1e-6)
  np.testing.assert_array_equal(index, full.argmax(1))
  for d, (_, bound) in enumerate(kinship.DEGREES):
    upper = kinship.DEGREES[d - 1][1] if d else np.inf
    np.testing.assert_array_equal(pairs[:, d], ((full > bound) & (full <= upper)).sum(1))
  # Same set: a person is never its own relative.
  self_best, self_index, _ = kinship.relatives(family['train'], family['train'], 8, True)
  assert (self_index != np.arange(len(family['train']))).all() and self_best.max() < 0.354


def test_snp_chunks_sum_to_the_one_matmul_answer(family, monkeypatch):
  """Genome-wide panels are counted 8,192 SNPs at a time: the chunks (padded with missing
  calls) must add up to the single-matmul counts."""
  import jax.numpy as jnp

  q, r = family['ordinary'][:, :300], family['train'][:, :300]
  whole = kinship.king(q, r)
  monkeypatch.setattr(kinship, '_CHUNK', 64)  # 300 SNPs -> 5 chunks, the last one padded
  prepared = [jnp.asarray(kinship._prepare(x)) for x in (q, r)]
  assert prepared[0].shape[1] == 320
  np.testing.assert_allclose(np.asarray(kinship._kinship_tile(*prepared)), whole, atol=1e-6)


class _Rows:
  """The HDF5 writer's interface over arrays (the gate reads and writes `file[name]`)."""

  def __init__(self, dosage):
    self.file = {'dosage': np.array(dosage)}


def test_gate_drops_a_copy_and_a_sibling_and_keeps_ordinary_people(family):
  cfg = _gate_config(max_fraction=0.5)  # 2 of 12 planted
  ref = gate.make_reference(family['train'], family['val'], cfg)
  copy = family['train'][3]
  synthetic = np.concatenate(
    [family['ordinary'][:4], copy[None], family['ordinary'][4:], family['sibling'][None]]
  )
  reasons = gate.screen(synthetic, ref)
  n = len(synthetic)
  # Ordinary people (real non-members) stay: no relative of a training person, and none of
  # these ten closer to train than the 1st percentile of the 60 held-out people.
  expected = [''] * n
  expected[4], expected[-1] = 'duplicate', 'first_degree'
  assert reasons.tolist() == expected
  assert ref.summary['distance_threshold'] > 0
  assert ref.summary['kinship_rule'].startswith('KING')
  flagged = np.flatnonzero(reasons != '')

  # apply(): both are redrawn with new ids beyond N, the ordinary people stay as they were.
  calls = []

  def redraw(label_ids, first_id):
    calls.append((label_ids.tolist(), first_id))
    rows = gate.Rows({'dosage': synthetic}, len(label_ids))
    rows.write_rows(0, family['fresh'][first_id - n : first_id - n + len(label_ids)])
    return rows

  h5 = _Rows(synthetic)
  labels = np.arange(n, dtype=np.int32) % 3
  summary = gate.apply(cfg, ref, h5, labels, redraw)
  assert calls == [(labels[flagged].tolist(), n)]
  assert summary['dropped_first_screen'] == {
    'duplicate': 1,
    'first_degree': 1,
    'second_degree': 0,
    'too_close': len(flagged) - 2,
  }
  assert summary['replaced_people'] == len(flagged) and summary['rounds'] == 1
  kept = np.ones(n, bool)
  kept[flagged] = False
  np.testing.assert_array_equal(h5.file['dosage'][kept], synthetic[kept])
  np.testing.assert_array_equal(h5.file['dosage'][flagged], family['fresh'][: len(flagged)])
  assert (gate.screen(h5.file['dosage'], ref) == '').all()
  assert set(summary['heldout_train_pairs']) == {'duplicate', 'first_degree', 'second_degree'}


def test_gate_fails_in_one_line_when_too_many_would_be_dropped(family):
  ref = gate.make_reference(family['train'], family['val'], _gate_config())
  copies = _Rows(family['train'][:5])
  never = lambda *_: pytest.fail('nothing may be redrawn past max_fraction')
  with pytest.raises(InputError, match=r'5 of 5 synthetic people would be dropped.*max_fraction'):
    gate.apply(_gate_config(), ref, copies, np.zeros(5, np.int32), never)
  # Replacements that stay flagged: the stage fails after max_rounds instead of looping.
  stubborn = lambda labels, _: _Rows(family['train'][: len(labels)])
  one_copy = _Rows(np.concatenate([family['ordinary'][:4], family['train'][:1]]))
  cfg = _gate_config(max_fraction=1.0, max_rounds=2)
  with pytest.raises(InputError, match='1 replacements still flagged after max_rounds=2'):
    gate.apply(cfg, ref, one_copy, np.zeros(5, np.int32), stubborn)


def test_rules_without_enough_data_are_skipped_and_said_so(family):
  cfg = _gate_config(kinship_min_snps=10**6, distance_min_heldout=100)
  ref = gate.make_reference(family['train'], family['val'], cfg)
  assert ref.summary['kinship_rule'].startswith('skipped: 1320 autosomal SNPs')
  assert ref.summary['distance_rule'].startswith('skipped: 60 held-out')
  assert (gate.screen(family['train'][:3], ref) == '').all()
  v = family['variants']
  kin_only = _gate_config(distance_percentile=0)  # (the sibling is also too close)
  short = gate.make_reference(family['train'], family['val'], kin_only, v.chrom, v.pos)
  assert short.summary['kinship_rule'].startswith('skipped: the autosomal SNPs span 2')
  assert short.summary['kinship_span_mb'] < 22  # 22 contigs of 1 Mb
  assert gate.screen(family['sibling'][None], short).tolist() == ['']
  spanned = _gate_config(distance_percentile=0, kinship_min_span_mb=10)
  ref = gate.make_reference(family['train'], family['val'], spanned, v.chrom, v.pos)
  assert gate.screen(family['sibling'][None], ref).tolist() == ['first_degree']
  with pytest.raises(InputError, match=r'sample\.gate\.kinship_degree=3'):
    _gate_config(kinship_degree=3)


def test_the_sample_stage_gates_before_writing(tmp_path, monkeypatch):
  """The default ar generator through the stage: copies planted in the draw are replaced."""
  from configs import kg1
  from gdiff import pipeline
  from gdiff.ar import stage

  c = kg1.get_config()
  s = c.data.simulate
  s.samples_per_population = (30, 30)
  s.populations = ('YRI', 'CEU')
  s.num_contigs = 22  # short autosomes: KING reads a genome, not two linked blocks
  s.contig_length = 1_000_000
  s.max_snps_per_contig = 30
  c.ar.context_snps = (4,)
  c.ar.max_iter = 10
  c.ar.block_snps = 64
  c.sample.num = 30
  # A model fit on 48 people draws near-copies of many: the distance rule (tested above)
  # would redraw most of them; here the planted copies and KING are under test.
  c.sample.gate.distance_percentile = 0.0
  c.sample.gate.kinship_min_snps = 500
  c.sample.gate.kinship_min_span_mb = 10  # 22 contigs of 1 Mb
  c.sample.gate.max_fraction = 0.5
  w = str(tmp_path / 'w')
  for mode in ('prepare', 'train'):
    pipeline.run(c, w, mode)
  train = cohort_lib.load_cohort(os.path.join(w, 'data')).dosages('train')
  real_fill = stage.fill_rows

  def planting(config, workdir, h5, label_ids, first_id=0, calibration=None):
    out = real_fill(config, workdir, h5, label_ids, first_id, calibration)
    if first_id == 0:  # the first draw: rows 0 and 7 become training people
      h5.write_rows(0, train[:1], hap0_BxS=np.minimum(train[:1], 1))
      h5.write_rows(7, train[5:6], hap0_BxS=np.minimum(train[5:6], 1))
    return out

  monkeypatch.setattr(stage, 'fill_rows', planting)
  pipeline.run(c, w, 'sample')

  with open(os.path.join(w, 'samples', 'manifest.json')) as f:
    summary = json.load(f)['gate']
  assert summary['dropped_first_screen']['duplicate'] >= 2
  with h5py.File(os.path.join(w, 'samples', 'synthetic.h5')) as f:
    dosage = f['dosage'][()]
  ref = gate.make_reference(train, np.zeros((0, train.shape[1]), np.int8), _gate_config())
  kin, _, _ = kinship.relatives(dosage, train)
  assert kin.max() < 0.354 and not (dosage[:, None] == train[None]).all(-1).any()
  assert (gate.screen(dosage, ref) == '').all()


def test_the_diffusion_generator_redraws_through_the_gate(tmp_path, monkeypatch):
  """The diffusion generator's replacements: new ids, embeddings and genotypes redrawn."""
  import test_sample_stage as tiny  # its hand-made workdir and random network

  from gdiff import sample

  class Factory:  # the one method of tmp_path_factory the fixture calls
    def mktemp(self, name):
      (tmp_path / name).mkdir()
      return tmp_path / name

  w = tiny.workdir._get_wrapped_function()(Factory())
  train = cohort_lib.load_cohort(os.path.join(w, 'data')).dosages('train')
  tiny.random_params._get_wrapped_function()(monkeypatch)
  real_rows, ids = sample.diffusion_rows, []

  def planting(config, workdir, h5, label_ids, first_id=0, calibration=None):
    ids.append((first_id, len(label_ids), calibration is not None))
    out = real_rows(config, workdir, h5, label_ids, first_id, calibration)
    if first_id == 0:
      h5.write_rows(0, train[:1])
      h5.write_rows(3, train[7:8])
    return out

  monkeypatch.setattr(sample, 'diffusion_rows', planting)
  c = tiny._config()
  c.sample.gate.distance_min_heldout = 5
  c.sample.gate.max_fraction = 1.0
  sample.sample_and_export(c, w)
  with open(os.path.join(w, 'samples', 'manifest.json')) as f:
    summary = json.load(f)['gate']
  n = 11  # case:7,control:4
  assert ids[0] == (0, n, False) and ids[1][0] == n and ids[1][2]  # new ids, cohort-calibrated
  assert summary['replaced_people'] >= 2 and summary['draw_ids_used'] > n
  with h5py.File(os.path.join(w, 'samples', 'synthetic.h5')) as f:
    dosage = f['dosage'][()]
  assert not (dosage[:, None] == train[None]).all(-1).any()
