"""Streaming ingest of genotype files into the cohort's HDF5 shards.

Readers (`gdiff.data.sources.SOURCES`: `gdiff.data.vcf`, `gdiff.data.plink`,
`gdiff.data.pgen`; several files read as one cohort) yield chunks of
`chunk_variants` variants, so that memory depends on the chunk and shard sizes,
not on the file length. Genotype calls and chromosome names are read by the
rules of `gdiff.data.genotypes` (every call checked; '22' with 'chr22'
refused); X, Y and MT follow `data.sex_chromosomes` (see `gdiff.data.qc`: by
default dropped, counted and logged in one line).

Phase. A VCF or phased PGEN call also gives its first haplotype's allele
(`hap0`), stored in every shard next to the dosage; the statistics say
`phased: true` only when no heterozygous call of a kept SNP has unknown phase
('0/1', a filled call; see `gdiff.data.qc`) and `unphased_het_calls` how many
did. PLINK .bed input carries no phase: `phased: false`, its heterozygous calls
stored as 1|0.

Each chunk goes through `gdiff.data.qc.qc_chunk`; kept SNPs are written as
shards of `shard_variants` variants with `gdiff.data.cohort.write_shard`
(REF/ALT upper-cased; a missing ID '.' becomes CHROM:POS:REF:ALT).
Input must be sorted by position within each chromosome, with each chromosome
in one block (across files too, when several are given).

`ingest` runs in this process; `gdiff.data.ingest_parallel` runs
`ingest_chunks` over genomic regions (`VcfSource.chunks(region=...)`, the
`slice` of PLINK and PGEN sources) in worker processes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterator

import numpy as np
import tqdm

from gdiff.data import cohort as cohort_lib
from gdiff.data import genotypes
from gdiff.data import qc as qc_lib
from gdiff.errors import InputError

# ------------------------------------------------------------------ ingest


@dataclasses.dataclass
class _Order:
  """Checks that variants come sorted by position within contiguous chromosomes."""

  path: str
  chrom: str | None = None
  pos: int = 0
  seen: set = dataclasses.field(default_factory=set)
  names: dict = dataclasses.field(default_factory=dict)  # chrom_key -> name as written

  def check(self, chunk: qc_lib.RawChunk) -> None:
    if not len(chunk):
      return
    chrom, pos = chunk.chrom, chunk.pos
    prev_chrom = np.concatenate([[self.chrom], chrom[:-1]])
    prev_pos = np.concatenate([[self.pos], pos[:-1]])
    same = chrom == prev_chrom
    bad = np.flatnonzero(same & (pos < prev_pos))
    if len(bad):
      i = bad[0]
      raise InputError(
        f'{self.path}: not sorted: {chrom[i]}:{pos[i]} after {chrom[i]}:'
        f'{prev_pos[i]} (sort it, e.g. bcftools sort)'
      )
    for i in np.flatnonzero(~same):
      if chrom[i] in self.seen:
        raise InputError(
          f'{self.path}: chromosome {chrom[i]} appears in two separate blocks '
          f'(sort it, e.g. bcftools sort)'
        )
      self.seen.add(str(chrom[i]))
      genotypes.check_contig_names([str(chrom[i])], self.path, self.names)
    self.chrom, self.pos = str(chrom[-1]), int(pos[-1])


def _kept_variants(chunk: qc_lib.RawChunk, keep: np.ndarray) -> cohort_lib.Variants:
  chrom, pos = chunk.chrom[keep], chunk.pos[keep]
  ref, alt = np.char.upper(chunk.ref[keep]), np.char.upper(chunk.alt[keep])
  ids = chunk.id[keep].astype(object)
  unnamed = np.flatnonzero(np.isin(ids, ['', '.']))  # later stages and exports want IDs
  ids[unnamed] = [f'{chrom[i]}:{pos[i]}:{ref[i]}:{alt[i]}' for i in unnamed]
  return cohort_lib.Variants(chrom=chrom, pos=pos, id=ids.astype(str), ref=ref, alt=alt)


class _ShardWriter:
  """Fills preallocated (N, shard_variants) buffers (dosage, hap0); writes a shard when full.

  Memory: the buffers plus the copies `write_shard` makes, about
  4 x N x shard_variants bytes, whatever the file length.
  """

  def __init__(self, out_dir: str, shard_variants: int, num_samples: int):
    self.out_dir = out_dir
    self.shard_variants = shard_variants
    self._buffer_NxS = np.empty((num_samples, shard_variants), np.int8)
    self._hap0_NxS = np.empty((num_samples, shard_variants), np.int8)
    self._variants: list[cohort_lib.Variants] = []
    self._count = 0
    self.shards: list[dict] = []
    os.makedirs(os.path.join(out_dir, cohort_lib.SHARD_DIR), exist_ok=True)

  def add(
    self, variants: cohort_lib.Variants, dosage_KxN: np.ndarray, hap0_KxN: np.ndarray
  ) -> None:
    done = 0
    while done < len(variants):
      take = min(len(variants) - done, self.shard_variants - self._count)
      self._buffer_NxS[:, self._count : self._count + take] = dosage_KxN[done : done + take].T
      self._hap0_NxS[:, self._count : self._count + take] = hap0_KxN[done : done + take].T
      self._variants.append(variants.take(np.s_[done : done + take]))
      self._count += take
      done += take
      if self._count == self.shard_variants:
        self._write()

  def _write(self) -> None:
    path = cohort_lib.shard_path(self.out_dir, len(self.shards))
    cohort_lib.write_shard(
      path,
      cohort_lib.Variants.concatenate(self._variants),
      self._buffer_NxS[:, : self._count],
      self._hap0_NxS[:, : self._count],
    )
    self.shards.append({'file': os.path.relpath(path, self.out_dir), 'variants': self._count})
    self._variants, self._count = [], 0

  def close(self) -> None:
    if self._count:
      self._write()


def ingest_chunks(
  chunks: Iterator[qc_lib.RawChunk],
  path: str,
  out_dir: str,
  num_samples: int,
  shard_variants: int,
  qc_cfg,
  hwe_groups_N: np.ndarray | None = None,
  progress=None,
  sex_chromosomes: str = 'drop',
) -> dict:
  """QC and shard writing for one stream of chunks (the whole file, or one region).

  Args:
    chunks: RawChunks in file order.
    path: the file, for messages.
    out_dir: shards go to `out_dir/shards/shard-KKKKK.h5`, numbered from 0.
    num_samples: N.
    shard_variants: kept variants per shard.
    qc_cfg: the `data.qc` section.
    hwe_groups_N: (N,) int sample groups for the HWE test (see `qc.qc_chunk`).
    progress: a tqdm bar to update, or None.
    sex_chromosomes: `data.sex_chromosomes` (see `gdiff.data.qc`).

  Returns:
    variants_read, variants_kept, dropped (per reason), bad_calls (calls read as
    missing per reason, see `gdiff.data.genotypes`), haploid_calls (kept haploid
    calls read as homozygous), missing_filled, phased,
    unphased_het_calls (see the module docstring), kept_per_chromosome (in
    file order), shards ([{file, variants}]).
  """
  order = _Order(path)
  writer = _ShardWriter(out_dir, shard_variants, num_samples)
  dropped = dict.fromkeys(qc_lib.REASONS, 0)
  bad_calls = dict.fromkeys(genotypes.BAD_CALL_REASONS, 0)
  read = kept = filled = unphased = haploid = 0
  phase_read = True  # every chunk came with phase (not PLINK)
  per_chrom: dict[str, int] = {}
  previous = None
  for chunk in chunks:
    order.check(chunk)
    result = qc_lib.qc_chunk(chunk, qc_cfg, previous, hwe_groups_N, sex_chromosomes)
    previous = result.last_snp
    read += len(chunk)
    kept += int(result.keep.sum())
    filled += result.missing_filled
    unphased += result.unphased_het_calls
    haploid += result.haploid_calls
    phase_read &= chunk.hap0_SxN is not None
    for reason, count in result.dropped.items():
      dropped[reason] += count
    for reason, count in chunk.bad_calls.items():
      bad_calls[reason] += count
    variants = _kept_variants(chunk, result.keep)
    for c, n in zip(*np.unique(variants.chrom, return_counts=True)):
      per_chrom[str(c)] = per_chrom.get(str(c), 0) + int(n)
    writer.add(variants, result.dosage_SxK, result.hap0_SxK)
    if progress is not None:
      progress.update(len(chunk))
  writer.close()
  return {
    'variants_read': read,
    'variants_kept': kept,
    'dropped': dropped,
    'bad_calls': bad_calls,
    'haploid_calls': haploid,
    'missing_filled': filled,
    'phased': phase_read and unphased == 0,
    'unphased_het_calls': unphased,
    'kept_per_chromosome': per_chrom,
    'shards': writer.shards,
  }


def ingest(
  source,
  out_dir: str,
  chunk_variants: int,
  shard_variants: int,
  qc_cfg,
  hwe_groups_N: np.ndarray | None = None,
  sex_chromosomes: str = 'drop',
) -> dict:
  """Streams `source` through QC into `out_dir/shards/` in one process.

  `gdiff.data.ingest_parallel.ingest` does the same over genomic regions in
  worker processes, with the same result.

  Args:
    source: a source of `gdiff.data.sources.open_source`.
    out_dir: the cohort folder being written.
    chunk_variants: variants read per chunk.
    shard_variants: kept variants per shard.
    qc_cfg: the `data.qc` section.
    hwe_groups_N: (N,) int sample groups for the HWE test (see `qc.qc_chunk`).
    sex_chromosomes: `data.sex_chromosomes` (see `gdiff.data.qc`).

  Returns:
    Statistics for the manifest: variants read/kept/dropped per reason, missing
    calls filled, phased and unphased_het_calls, kept SNPs per chromosome,
    shards, wall time.
  """
  start = time.time()
  progress = tqdm.tqdm(
    total=source.num_variants, unit='variants', desc='ingest', disable=None, leave=False
  )
  with progress:
    stats = ingest_chunks(
      source.chunks(chunk_variants, bad_calls=qc_cfg.bad_calls),
      source.path,
      out_dir,
      len(source.samples),
      shard_variants,
      qc_cfg,
      hwe_groups_N,
      progress,
      sex_chromosomes,
    )
  wall = time.time() - start
  log_stats(source.path, stats, wall)
  return dict(stats, ingest_wall_s=round(wall, 3))


def log_stats(path: str, stats: dict, wall: float, how: str = '') -> None:
  """One logging line summarising an ingest."""
  logging.info(
    'ingest: %s: %d variants read, %d kept, dropped %s, %d missing calls filled, %s (%.1f s%s)',
    path,
    stats['variants_read'],
    stats['variants_kept'],
    stats['dropped'],
    stats['missing_filled'],
    'phased'
    if stats['phased']
    else f'unphased (heterozygous calls of unknown phase: {stats["unphased_het_calls"]})',
    wall,
    how,
  )
  sex = stats['dropped'].get('sex_chromosome', 0)
  if sex:
    logging.info(
      'ingest: %s: dropped %d chrX/chrY/MT variants: sex chromosomes and mitochondria are '
      'not modelled by default; set data.sex_chromosomes=diploid to keep them (haploid '
      'calls read as homozygous)',
      path,
      sex,
    )
  if stats.get('haploid_calls'):
    logging.info(
      'ingest: %s: %d haploid calls on X/Y/MT read as homozygous diploid '
      '(data.sex_chromosomes=diploid)',
      path,
      stats['haploid_calls'],
    )
