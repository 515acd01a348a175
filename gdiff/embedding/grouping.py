"""SNP groups: which kept SNPs share one PCA (one row of the (G, C) embedding).

Two groupings, picked by `embedding.grouping` from `GROUPINGS`:
  window  consecutive SNPs of one chromosome, `window_snps` per group and a span
          (last - first position) below `window_span_bp` (0: no span limit).
  genes   genes of an annotation (BED: chrom, start, end, name, 0-based half-open;
          GTF: `gene` records, gene_name or else gene_id, 1-based closed).
          A SNP inside one gene goes to it. A SNP inside two or more genes goes
          to the one whose midpoint is nearest (ties: the gene that starts first,
          then the first in the file). A SNP outside every gene goes to the
          nearest gene by distance to its interval (ties: the gene upstream,
          i.e. the one that starts first), as the paper's preprocessing did.
          Genes that receive no SNP are dropped. SNPs of a chromosome without
          any annotated gene are grouped in windows (with a warning).

Every kept SNP belongs to exactly one group; groups are in genome order
(chromosome order of the variant table, then position). Chromosome names
match with or without a `chr` prefix.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import os
import re

import numpy as np

from gdiff import errors
from gdiff.data import cohort as cohort_lib

_SNP_BLOCK = 256  # SNPs per block in the SNP x candidate gene distances


@dataclasses.dataclass(frozen=True)
class Groups:
  """Assignment of the S kept SNPs to G groups, in genome order."""

  group_S: np.ndarray  # (S,) int32 group index of each SNP
  names: np.ndarray  # (G,) str
  chrom: np.ndarray  # (G,) str
  start: np.ndarray  # (G,) int64 first SNP position (1-based)
  end: np.ndarray  # (G,) int64 last SNP position

  @property
  def num_groups(self) -> int:
    return len(self.names)

  @property
  def sizes(self) -> np.ndarray:
    """(G,) number of SNPs per group."""
    return np.bincount(self.group_S, minlength=self.num_groups)

  def members(self) -> list[np.ndarray]:
    """SNP indices (ascending) of each group."""
    order = np.argsort(self.group_S, kind='stable')
    return np.split(order, np.cumsum(self.sizes)[:-1])


def normalize_chrom(name: str) -> str:
  """'chr1', 'Chr1' and '1' all become '1'."""
  return re.sub(r'^chr', '', str(name), flags=re.IGNORECASE)


def _chrom_runs(variants: cohort_lib.Variants) -> list[tuple[str, np.ndarray]]:
  """(chromosome, SNP indices) in order of first appearance."""
  keys = np.array([normalize_chrom(c) for c in variants.chrom], dtype=object)
  _, first = np.unique(keys, return_index=True)
  return [(variants.chrom[i], np.flatnonzero(keys == keys[i])) for i in np.sort(first)]


def _window_ids(pos: np.ndarray, window_snps: int, window_span_bp: int) -> np.ndarray:
  """Window index (0, 1, ...) of each SNP of one chromosome, positions ascending."""
  if window_span_bp <= 0:
    return np.arange(len(pos)) // window_snps
  ids = np.empty(len(pos), np.int64)
  current, count, first = 0, 0, None
  for i, p in enumerate(pos):
    if first is not None and (count == window_snps or p - first >= window_span_bp):
      current, count, first = current + 1, 0, None
    if first is None:
      first = p
    ids[i] = current
    count += 1
  return ids


def _finish(variants, labels_S: np.ndarray, names_by_label: dict) -> Groups:
  """Numbers groups in genome order from per-SNP labels (any hashable, per chromosome)."""
  runs = _chrom_runs(variants)
  chrom_rank = np.empty(len(variants), np.int64)
  for rank, (_, idx) in enumerate(runs):
    chrom_rank[idx] = rank
  pos = variants.pos.astype(np.int64)
  firsts = {}
  for i in np.lexsort((pos, chrom_rank)):
    firsts.setdefault(labels_S[i], i)
  ordered = sorted(firsts, key=lambda lab: (chrom_rank[firsts[lab]], pos[firsts[lab]]))
  index = {lab: g for g, lab in enumerate(ordered)}
  group_S = np.array([index[lab] for lab in labels_S], np.int32)
  num_groups = len(ordered)
  start = np.full(num_groups, np.iinfo(np.int64).max)
  end = np.zeros(num_groups, np.int64)
  np.minimum.at(start, group_S, pos)
  np.maximum.at(end, group_S, pos)
  chrom = np.array([variants.chrom[firsts[lab]] for lab in ordered], dtype=object).astype(str)
  names = np.array([names_by_label[lab] for lab in ordered], dtype=object).astype(str)
  return Groups(group_S, names, chrom, start, end)


def _window_labels(variants, idx: np.ndarray, chrom: str, emb_cfg, labels, names) -> None:
  pos = variants.pos[idx].astype(np.int64)
  if np.any(np.diff(pos) < 0):
    raise errors.InputError(f'variants of chromosome {chrom} are not sorted by position')
  ids = _window_ids(pos, int(emb_cfg.window_snps), int(emb_cfg.window_span_bp))
  for i, w in zip(idx, ids):
    labels[i] = ('window', chrom, int(w))
  for w in np.unique(ids):
    first = pos[ids == w][0]
    names[('window', chrom, int(w))] = f'{chrom}:{first}'


def group_window(variants: cohort_lib.Variants, emb_cfg) -> Groups:
  """Consecutive SNPs per chromosome (`window_snps`, `window_span_bp`).

  Args:
    variants: the kept SNPs in genome order.
    emb_cfg: the `embedding` config section.
  Returns:
    Groups in genome order.
  """
  _check_window_cfg(emb_cfg)
  labels = np.empty(len(variants), dtype=object)
  names = {}
  for chrom, idx in _chrom_runs(variants):
    _window_labels(variants, idx, chrom, emb_cfg, labels, names)
  return _finish(variants, labels, names)


def _check_window_cfg(emb_cfg) -> None:
  if int(emb_cfg.window_snps) < 1:
    raise errors.InputError(f'embedding.window_snps must be >= 1, got {emb_cfg.window_snps}')
  if int(emb_cfg.window_span_bp) < 0:
    raise errors.InputError(f'embedding.window_span_bp must be >= 0, got {emb_cfg.window_span_bp}')


# ------------------------------------------------------------------ annotation


@dataclasses.dataclass(frozen=True)
class Genes:
  """Gene intervals, 1-based closed, in file order."""

  chrom: np.ndarray  # (K,) str, normalised (no 'chr' prefix)
  start: np.ndarray  # (K,) int64
  end: np.ndarray  # (K,) int64
  name: np.ndarray  # (K,) str


def _open_text(path: str):
  try:
    opener = gzip.open if path.endswith('.gz') else open
    return opener(path, 'rt')
  except OSError as e:
    raise errors.InputError(f'{path}: cannot open the annotation ({e})') from e


def _read_bed(path: str) -> list[tuple[str, int, int, str]]:
  rows = []
  with _open_text(path) as f:
    for lineno, line in enumerate(f, 1):
      if not line.strip() or line.startswith(('#', 'track', 'browser')):
        continue
      cols = line.rstrip('\n').split('\t')
      if len(cols) < 4:
        cols = line.split()
      if len(cols) < 4:
        raise errors.InputError(
          f'{errors.where(path, lineno)}: BED needs 4 columns (chrom, start, end, name)'
        )
      try:
        start, end = int(cols[1]), int(cols[2])
      except ValueError as e:
        raise errors.InputError(f'{errors.where(path, lineno)}: start/end are not integers') from e
      if start < 0 or end <= start:
        raise errors.InputError(
          f'{errors.where(path, lineno)}: need 0 <= start < end, got {start} {end}'
        )
      rows.append((cols[0], start + 1, end, cols[3]))  # 0-based half-open -> 1-based closed
  return rows


_GTF_ATTR = re.compile(r'(\w+)\s+"([^"]*)"')


def _read_gtf(path: str) -> list[tuple[str, int, int, str]]:
  rows = []
  with _open_text(path) as f:
    for lineno, line in enumerate(f, 1):
      if '\tgene\t' not in line:  # fast path: only gene records matter
        continue
      cols = line.rstrip('\n').split('\t')
      if len(cols) != 9:
        raise errors.InputError(
          f'{errors.where(path, lineno)}: GTF needs 9 tab-separated columns, got {len(cols)}'
        )
      if cols[2] != 'gene':
        continue
      try:
        start, end = int(cols[3]), int(cols[4])
      except ValueError as e:
        raise errors.InputError(f'{errors.where(path, lineno)}: start/end are not integers') from e
      if start < 1 or end < start:
        raise errors.InputError(
          f'{errors.where(path, lineno)}: need 1 <= start <= end, got {start} {end}'
        )
      attrs = dict(_GTF_ATTR.findall(cols[8]))
      name = attrs.get('gene_name') or attrs.get('gene_id')
      if not name:
        raise errors.InputError(
          f'{errors.where(path, lineno)}: gene record without gene_name or gene_id'
        )
      rows.append((cols[0], start, end, name))
  return rows


ANNOTATION_READERS = {'.bed': _read_bed, '.gtf': _read_gtf}


def read_annotation(path: str) -> Genes:
  """Reads gene intervals from a BED or GTF file (optionally .gz).

  Args:
    path: file name ending in .bed, .gtf, .bed.gz or .gtf.gz.
  Returns:
    Genes, 1-based closed intervals.
  """
  if not path:
    raise errors.InputError('embedding.grouping=genes needs embedding.annotation (BED or GTF)')
  stem = path[:-3] if path.endswith('.gz') else path
  suffix = '.' + stem.rsplit('.', 1)[-1].lower() if '.' in stem else ''
  if suffix not in ANNOTATION_READERS:
    raise errors.InputError(
      f'{path}: unknown annotation format (expected '
      f'{", ".join(ANNOTATION_READERS)}, optionally .gz)'
    )
  rows = ANNOTATION_READERS[suffix](path)
  if not rows:
    raise errors.InputError(f'{path}: no gene records')
  chrom, start, end, name = zip(*rows)
  return Genes(
    np.array([normalize_chrom(c) for c in chrom], dtype=object).astype(str),
    np.array(start, np.int64),
    np.array(end, np.int64),
    np.array(name, dtype=object).astype(str),
  )


def assign_to_genes(pos_S: np.ndarray, start_K: np.ndarray, end_K: np.ndarray) -> np.ndarray:
  """Gene index for each SNP of one chromosome (see the module docstring for the rules).

  Args:
    pos_S: SNP positions (1-based).
    start_K, end_K: gene intervals (1-based closed) on the same chromosome, K >= 1.
  Returns:
    (S,) int64 index into the genes.
  """
  pos_S = np.asarray(pos_S, np.int64)
  start_K, end_K = np.asarray(start_K, np.int64), np.asarray(end_K, np.int64)
  rank_K = np.argsort(np.lexsort((np.arange(len(start_K)), start_K)), kind='stable')
  order = np.argsort(pos_S, kind='stable')
  out = np.empty(len(pos_S), np.int64)
  for lo in range(0, len(pos_S), _SNP_BLOCK):
    rows = order[lo : lo + _SNP_BLOCK]
    pmin, pmax = pos_S[rows].min(), pos_S[rows].max()
    # The nearest gene of a SNP in [pmin, pmax] overlaps that span, or is the
    # left gene ending last before it, or the right gene starting first after it.
    cand = (start_K <= pmax) & (end_K >= pmin)
    left, right = end_K < pmin, start_K > pmax
    if left.any():
      cand |= left & (end_K == end_K[left].max())
    if right.any():
      cand |= right & (start_K == start_K[right].min())
    genes = np.flatnonzero(cand)
    out[rows] = genes[_nearest(pos_S[rows], start_K[genes], end_K[genes], rank_K[genes])]
  return out


def _nearest(pos_B, start_k, end_k, rank_k) -> np.ndarray:
  """Index into the k candidate genes for each of B SNPs (dense B x k)."""
  p = pos_B[:, None]
  dist = np.maximum(np.maximum(start_k[None] - p, p - end_k[None]), 0)
  inside = dist == 0
  mid = np.abs(2 * p - (start_k + end_k)[None])  # twice the distance to the midpoint
  # Inside some gene: nearest midpoint; outside all: nearest interval; ties: rank.
  primary = np.where(inside.any(1, keepdims=True), np.where(inside, mid, np.inf), dist)
  best = primary.min(1, keepdims=True)
  return np.argmin(np.where(primary == best, rank_k[None], np.iinfo(np.int64).max), axis=1)


def group_genes(variants: cohort_lib.Variants, emb_cfg) -> Groups:
  """One group per annotated gene that receives SNPs (`embedding.annotation`).

  Args:
    variants: the kept SNPs in genome order.
    emb_cfg: the `embedding` config section.
  Returns:
    Groups in genome order, named by gene.
  """
  genes = read_annotation(str(emb_cfg.annotation))
  labels = np.empty(len(variants), dtype=object)
  names = {}
  for chrom, idx in _chrom_runs(variants):
    on_chrom = np.flatnonzero(genes.chrom == normalize_chrom(chrom))
    if not len(on_chrom):
      logging.warning(
        'grouping: no gene of %s on chromosome %s; its %d SNPs are grouped in windows',
        emb_cfg.annotation,
        chrom,
        len(idx),
      )
      _check_window_cfg(emb_cfg)
      _window_labels(variants, idx, chrom, emb_cfg, labels, names)
      continue
    which = on_chrom[assign_to_genes(variants.pos[idx], genes.start[on_chrom], genes.end[on_chrom])]
    for i, k in zip(idx, which):
      labels[i] = ('gene', int(k))
    for k in np.unique(which):
      names[('gene', int(k))] = genes.name[k]
  return _finish(variants, labels, names)


GROUPINGS = {'window': group_window, 'genes': group_genes}


def check_config(emb_cfg) -> None:
  """Raises InputError naming the option for bad grouping settings (before any stage)."""
  if emb_cfg.grouping not in GROUPINGS:
    raise errors.InputError(
      f'embedding.grouping={emb_cfg.grouping!r} is unknown (known: {", ".join(GROUPINGS)})'
    )
  _check_window_cfg(emb_cfg)  # genes: chromosomes without genes are windowed
  if emb_cfg.grouping == 'genes':
    if not emb_cfg.annotation:
      raise errors.InputError('embedding.grouping=genes needs embedding.annotation (BED or GTF)')
    if not os.path.isfile(emb_cfg.annotation):
      raise errors.InputError(f'embedding.annotation: no such file: {emb_cfg.annotation}')


def make_groups(emb_cfg, variants: cohort_lib.Variants) -> Groups:
  """Groups the kept SNPs with the grouping named by `embedding.grouping`.

  Args:
    emb_cfg: the `embedding` config section.
    variants: the kept SNPs in genome order.
  Returns:
    Groups.
  """
  if emb_cfg.grouping not in GROUPINGS:
    raise errors.InputError(
      f'embedding.grouping={emb_cfg.grouping!r} is unknown (known: {", ".join(GROUPINGS)})'
    )
  if not len(variants):
    raise errors.InputError('embedding: the cohort has no SNPs to group')
  groups = GROUPINGS[emb_cfg.grouping](variants, emb_cfg)
  logging.info(
    'grouping %s: %d SNPs in %d groups (sizes %d..%d)',
    emb_cfg.grouping,
    len(variants),
    groups.num_groups,
    groups.sizes.min(),
    groups.sizes.max(),
  )
  return groups
