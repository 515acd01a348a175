"""Tests for gdiff.embedding.grouping: windows, gene assignment rules, annotation errors."""

import numpy as np
import pytest

from configs import base
from gdiff import errors
from gdiff.data import cohort as cohort_lib
from gdiff.embedding import grouping


def _variants(chrom, pos):
  n = len(pos)
  return cohort_lib.Variants(
    chrom=np.asarray(chrom, dtype=object).astype(str),
    pos=np.asarray(pos, np.int64),
    id=np.array([f'rs{i}' for i in range(n)]),
    ref=np.array(['A'] * n),
    alt=np.array(['G'] * n),
  )


def _cfg(**kw):
  cfg = base.get_config().embedding
  cfg.update(kw)
  return cfg


def _check_partition(groups, num_snps):
  members = groups.members()
  assert sorted(np.concatenate(members).tolist()) == list(range(num_snps))
  assert groups.sizes.sum() == num_snps and (groups.sizes > 0).all()


def test_window_counts_and_order():
  v = _variants(['1'] * 70 + ['2'] * 10, list(range(1, 71)) + list(range(5, 15)))
  g = grouping.make_groups(_cfg(window_snps=32), v)
  np.testing.assert_array_equal(g.sizes, [32, 32, 6, 10])
  np.testing.assert_array_equal(g.chrom, ['1', '1', '1', '2'])
  np.testing.assert_array_equal(g.start, [1, 33, 65, 5])
  np.testing.assert_array_equal(g.end, [32, 64, 70, 14])
  assert (np.diff(g.group_S) >= 0).all()
  _check_partition(g, 80)


def test_window_span_limit():
  v = _variants(['1'] * 6, [1, 100, 200, 1000, 1100, 1600])
  g = grouping.make_groups(_cfg(window_snps=32, window_span_bp=500), v)
  # span (last - first) stays below 500 bp: [1, 100, 200] [1000, 1100] [1600]
  np.testing.assert_array_equal(g.group_S, [0, 0, 0, 1, 1, 2])
  g = grouping.make_groups(_cfg(window_snps=2, window_span_bp=500), v)
  np.testing.assert_array_equal(g.group_S, [0, 0, 1, 2, 2, 3])


def test_bad_window_config():
  v = _variants(['1'], [1])
  with pytest.raises(errors.InputError, match='embedding.window_snps'):
    grouping.make_groups(_cfg(window_snps=0), v)
  with pytest.raises(errors.InputError, match='embedding.grouping'):
    grouping.make_groups(_cfg(grouping='nope'), v)


BED = """track name=genes
chr1\t1000\t2000\tA
chr1\t1500\t3000\tB
chr1\t5000\t6000\tC
chr1\t8000\t9000\tNOSNP
chr2\t100\t200\tD
chr2\t299\t400\tE
"""


def test_genes_overlap_intergenic_and_chrom_names(tmp_path):
  path = tmp_path / 'genes.bed'
  path.write_text(BED)
  # BED [1000, 2000) is 1-based [1001, 2000].
  pos = {
    1000: 'A',  # intergenic, 1 bp before A
    1001: 'A',  # first base of A
    1600: 'A',  # in A and B: A's midpoint 1500.5 is nearer than B's 2250.5
    2000: 'B',  # last base of A, inside B: B's midpoint nearer
    4000: 'B',  # intergenic: 1000 bp from B, 1001 from C
    4001: 'C',  # intergenic: 1001 from B, 1000 from C
  }
  chrom2 = {150: 'D', 250: 'D'}  # 250: 50 bp from D and from E -> upstream gene D
  v = _variants(
    ['1'] * len(pos) + ['2'] * len(chrom2) + ['3'] * 3, sorted(pos) + sorted(chrom2) + [10, 20, 30]
  )
  g = grouping.make_groups(_cfg(grouping='genes', annotation=str(path), window_snps=2), v)
  names = g.names[g.group_S].tolist()
  assert names[:8] == [pos[p] for p in sorted(pos)] + [chrom2[p] for p in sorted(chrom2)]
  # chromosome 3 has no gene: windows of 2 SNPs
  assert g.chrom[g.group_S[8:]].tolist() == ['3'] * 3
  assert g.group_S[8] == g.group_S[9] != g.group_S[10]
  # genome order, genes without SNPs dropped
  assert g.names.tolist() == ['A', 'B', 'C', 'D', '3:10', '3:30']
  _check_partition(g, len(v))


def test_gtf_is_one_based_closed(tmp_path):
  path = tmp_path / 'genes.gtf'
  path.write_text(
    '#!genome-build test\n'
    '1\tsrc\tgene\t1\t100\t.\t+\t.\tgene_id "G1"; gene_name "X";\n'
    '1\tsrc\ttranscript\t1\t300\t.\t+\t.\tgene_id "G9"; gene_name "T";\n'
    '1\tsrc\tgene\t101\t200\t.\t+\t.\tgene_id "G2";\n'
  )
  v = _variants(['chr1'] * 4, [100, 101, 200, 250])
  g = grouping.make_groups(_cfg(grouping='genes', annotation=str(path)), v)
  assert g.names[g.group_S].tolist() == ['X', 'G2', 'G2', 'G2']


@pytest.mark.parametrize(
  'name,text,line',
  [
    ('bad.bed', 'chr1\t10\t20\tA\nchr1\t10\t20\n', 2),
    ('bad2.bed', 'chr1\t10\tx\tA\n', 1),
    ('bad3.bed', '#c\nchr1\t30\t20\tA\n', 2),
    ('bad.gtf', '1\ts\tgene\t5\t9\t.\t+\t.\tgene_id "A";\n1\ts\tgene\t5\n', 2),
    ('bad2.gtf', '1\ts\tgene\t5\t9\t.\t+\t.\tfoo "A";\n', 1),
  ],
)
def test_bad_annotation_names_file_and_line(tmp_path, name, text, line):
  path = tmp_path / name
  path.write_text(text)
  v = _variants(['1'], [15])
  with pytest.raises(errors.InputError, match=f'{name}:{line}'):
    grouping.make_groups(_cfg(grouping='genes', annotation=str(path)), v)


def test_missing_annotation():
  v = _variants(['1'], [15])
  with pytest.raises(errors.InputError, match='embedding.annotation'):
    grouping.make_groups(_cfg(grouping='genes', annotation=''), v)
  with pytest.raises(errors.InputError, match='unknown annotation format'):
    grouping.make_groups(_cfg(grouping='genes', annotation='genes.txt'), v)


def _reference_assign(p, start, end):
  """The documented rules, one SNP at a time."""
  genes = range(len(start))
  inside = [k for k in genes if start[k] <= p <= end[k]]
  if inside:
    return min(inside, key=lambda k: (abs(p - (start[k] + end[k]) / 2), start[k], k))
  return min(genes, key=lambda k: (max(start[k] - p, p - end[k]), start[k], k))


@pytest.mark.parametrize('seed', range(5))
def test_assign_to_genes_matches_reference(seed):
  rng = np.random.default_rng(seed)
  start = rng.integers(1, 3000, 40)
  end = start + rng.integers(0, 400, 40)  # overlaps, nested genes, duplicate starts
  pos = rng.integers(1, 4000, 600)  # unsorted, beyond both ends
  got = grouping.assign_to_genes(pos, start, end)
  assert got.tolist() == [_reference_assign(p, start, end) for p in pos]
