"""Variant quality control on one chunk of raw calls; ingest streams chunks through it.

Filters, each variant counted under the first one it fails (`REASONS` order):
  multiallelic  more than one ALT allele
  not_snp       REF or ALT not a single base A/C/G/T (indels, symbolic, missing ALT)
  sex_chromosome  on X, Y or MT (`gdiff.data.genotypes.HAPLOID_CHROMOSOMES`), when
                `data.sex_chromosomes='drop'` (the default): gdiff models diploid
                autosomes; males' haploid calls there are not diploid genotypes
  duplicate     same chrom and position as the previous biallelic SNP
  call_rate     share of samples with a call < `min_call_rate`
  maf           minor allele frequency among the calls < `min_maf`
  hwe           Hardy-Weinberg exact test p < `min_hwe_p` (0 disables) in any of the
                sample groups ingest passes: each class alone by default
                (`hwe_within='class'`), since pooled populations fail HWE at
                exactly their ancestry-informative SNPs (Wahlund effect). Not
                tested on X, Y and MT (kept under 'diploid'), where males'
                homozygous calls break HWE by design

Sex chromosomes (`data.sex_chromosomes`, `SEX_CHROMOSOMES`): 'drop' drops every
record on X, Y and MT under 'sex_chromosome' (counted, and logged by ingest);
'diploid' keeps them, males' haploid calls read as homozygous diploid (1 as
1|1, 0 as 0|0; counted as `haploid_calls`), through the other filters but HWE.

A genotype with any missing allele counts as missing. Missing calls of kept
SNPs are filled with the SNP's rounded mean dosage (floor(mean + 0.5) of the
called alt-allele counts, the hard call nearest the mean) and counted.

Phase. Kept SNPs carry the first haplotype's allele `hap0` next to the dosage
(the second is dosage - hap0). A filled call's haplotypes follow its filled
dosage: 0 -> 0|0, 2 -> 1|1, 1 -> 1|0, the last counted as a heterozygous call
of unknown phase. A source without phase (PLINK .bed: `RawChunk.hap0_SxN` is
None) gets the same 1|0 for every heterozygous call, each counted as of
unknown phase. `unphased_het_calls` counts these calls among the kept SNPs
(with the '/' heterozygous calls of a VCF, see `gdiff.data.genotypes`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gdiff.data import genotypes

REASONS = ('multiallelic', 'not_snp', 'sex_chromosome', 'duplicate', 'call_rate', 'maf', 'hwe')
# Reasons about what a record is, not thresholds of `data.qc`.
STRUCTURAL = ('multiallelic', 'not_snp', 'sex_chromosome', 'duplicate')
# data.sex_chromosomes: drop X/Y/MT records, or keep them with haploid calls as homozygous.
SEX_CHROMOSOMES = ('drop', 'diploid')
_BASES = np.array(['A', 'C', 'G', 'T'])
_HWE_BLOCK = 1 << 22  # SNPs x het-counts evaluated at once in the exact test
_COUNT_BLOCK = 1 << 22  # genotypes per float32 block in genotype_counts


@dataclasses.dataclass
class RawChunk:
  """Consecutive variants as read from a file, before QC."""

  chrom: np.ndarray  # (S,) str
  pos: np.ndarray  # (S,) int64
  id: np.ndarray  # (S,) str
  ref: np.ndarray  # (S,) str
  alt: np.ndarray  # (S,) str, the first ALT allele ('' when none)
  multiallelic: np.ndarray  # (S,) bool
  dosage_SxN: np.ndarray  # (S, N) int8 alt-allele count, -1 missing
  # (S,) int haploid calls read as homozygous per record (None: the source cannot tell).
  haploid_calls_S: np.ndarray | None = None
  # (S, N) int8 allele on the first haplotype; None: the source has no phase (PLINK).
  hap0_SxN: np.ndarray | None = None
  # (S,) int heterozygous calls of unknown phase per record (with hap0_SxN).
  unphased_het_S: np.ndarray | None = None
  # Calls read as missing under `data.qc.bad_calls='missing'`, per reason (see ingest).
  bad_calls: dict[str, int] = dataclasses.field(default_factory=dict)

  def __len__(self) -> int:
    return len(self.pos)


@dataclasses.dataclass
class QcResult:
  keep: np.ndarray  # (S,) bool
  dosage_SxK: np.ndarray  # (K, N) int8, kept SNPs, missing filled
  hap0_SxK: np.ndarray  # (K, N) int8 first haplotype's allele, kept SNPs, missing filled
  dropped: dict[str, int]
  missing_filled: int
  unphased_het_calls: int  # kept heterozygous calls of unknown phase (filled ones too)
  haploid_calls: int  # kept haploid calls read as homozygous (data.sex_chromosomes='diploid')
  alt_freq: np.ndarray  # (K,) float64 ALT frequency among calls (before filling)
  last_snp: tuple[str, int] | None  # (chrom, pos) of the chunk's last biallelic SNP


def _is_base(a: np.ndarray) -> np.ndarray:
  return np.isin(np.char.upper(a.astype(str)), _BASES)


def _log_factorials(n: int) -> np.ndarray:
  out = np.zeros(n + 1)
  out[1:] = np.cumsum(np.log(np.arange(1, n + 1)))
  return out


def hwe_exact_p(het: np.ndarray, hom_ref: np.ndarray, hom_alt: np.ndarray) -> np.ndarray:
  """Hardy-Weinberg exact test p-values (Wigginton, Cutler & Abecasis 2005), vectorised.

  The p-value sums the probabilities (given the allele counts) of all
  heterozygote counts no more likely than the observed one, as plink's
  `--hardy` does without mid-p.

  Args:
    het, hom_ref, hom_alt: (S,) genotype counts among called samples.

  Returns:
    (S,) float64 p-values in [0, 1]; 1 for monomorphic or empty SNPs.
  """
  het, hom_ref, hom_alt = (np.asarray(x, np.int64) for x in (het, hom_ref, hom_alt))
  n = het + hom_ref + hom_alt
  rare = np.minimum(2 * hom_ref + het, 2 * hom_alt + het)
  common = 2 * n - rare
  p = np.ones(len(het))
  todo = np.flatnonzero(rare > 0)
  if not len(todo):
    return p
  logf = _log_factorials(int(2 * n.max()))
  todo = todo[np.argsort(rare[todo], kind='stable')]  # similar grid sizes per block
  widths = rare[todo] // 2 + 1  # ascending
  start = 0
  while start < len(todo):
    k = max(1, _HWE_BLOCK // int(widths[start]))
    while k > 1 and k * int(widths[min(start + k, len(todo)) - 1]) > _HWE_BLOCK:
      k //= 2
    stop = min(start + k, len(todo))
    idx = todo[start:stop]
    width = int(widths[stop - 1])
    nn, na, nb = n[idx, None], rare[idx, None], common[idx, None]
    h = (na % 2) + 2 * np.arange(width)[None, :]  # possible het counts, same parity as na
    valid = h <= na
    hc = np.where(valid, h, na % 2)
    logp = (
      logf[nn]
      - logf[(na - hc) // 2]
      - logf[hc]
      - logf[(nb - hc) // 2]
      + hc * np.log(2.0)
      + logf[na]
      + logf[nb]
      - logf[2 * nn]
    )
    logp = np.where(valid, logp, -np.inf)
    obs = het[idx]
    logp_obs = logp[np.arange(len(idx)), (obs - (na[:, 0] % 2)) // 2]
    prob = np.exp(logp - logp.max(axis=1, keepdims=True))
    prob_obs = np.exp(logp_obs - logp.max(axis=1))
    total = prob.sum(axis=1)
    tail = np.where(prob <= prob_obs[:, None] * (1 + 1e-7), prob, 0.0).sum(axis=1)
    p[idx] = np.minimum(1.0, tail / total)
    start = stop
  return p


def genotype_counts(dosage_SxN: np.ndarray, groups_N: np.ndarray) -> np.ndarray:
  """Counts of dosage 0, 1, 2 per SNP and sample group, (S, G, 3) int64.

  One float32 matmul per genotype value against the group indicator matrix:
  much faster than numpy reductions over int8 (exact below 2**24 samples).
  """
  _, group_ids = np.unique(groups_N, return_inverse=True)
  onehot_NxG = np.zeros((len(groups_N), group_ids.max() + 1 if len(groups_N) else 1), np.float32)
  onehot_NxG[np.arange(len(groups_N)), group_ids] = 1.0
  out = np.empty((dosage_SxN.shape[0], onehot_NxG.shape[1], 3), np.int64)
  rows = max(1, _COUNT_BLOCK // max(dosage_SxN.shape[1], 1))  # bounds the float32 temporaries
  for start in range(0, dosage_SxN.shape[0], rows):
    block = dosage_SxN[start : start + rows]
    for value in range(3):
      out[start : start + rows, :, value] = np.rint(
        (block == value).astype(np.float32) @ onehot_NxG
      )
  return out


def sex_chromosome_mask(chrom_S: np.ndarray) -> np.ndarray:
  """(S,) bool: the record is on X, Y or MT (any of their names, see `gdiff.data.genotypes`)."""
  names = np.unique(chrom_S)
  sex = {n for n in names if genotypes.chrom_key(n).upper() in genotypes.HAPLOID_CHROMOSOMES}
  return np.isin(chrom_S, list(sex)) if sex else np.zeros(len(chrom_S), bool)


def qc_chunk(
  chunk: RawChunk,
  qc_cfg,
  previous: tuple[str, int] | None,
  hwe_groups_N: np.ndarray | None = None,
  sex_chromosomes: str = 'drop',
) -> QcResult:
  """Applies the filters to one chunk and fills missing calls of kept SNPs.

  Args:
    chunk: raw variants.
    qc_cfg: `data.qc` (min_maf, min_call_rate, min_hwe_p).
    previous: (chrom, pos) of the last biallelic SNP of the previous chunk.
    hwe_groups_N: (N,) int group of each sample; the HWE test runs in each group
      and a SNP fails if it fails in any. Samples in a negative group are left
      out of every statistic (call rate, MAF, HWE, the fill value) but still
      filled and kept: prepare puts val/test there, so that QC is fit on train.
      None: one group of everyone.
    sex_chromosomes: `data.sex_chromosomes` (module docstring).

  Returns:
    QcResult (the phase rule: module docstring).
  """
  s = len(chunk)
  reason = np.full(s, -1)

  def mark(mask, name):
    reason[(reason < 0) & mask] = REASONS.index(name)

  mark(chunk.multiallelic, 'multiallelic')
  mark(~(_is_base(chunk.ref) & _is_base(chunk.alt)), 'not_snp')
  sex_S = sex_chromosome_mask(chunk.chrom)
  if sex_chromosomes == 'drop':
    mark(sex_S, 'sex_chromosome')
  snp = np.flatnonzero(reason < 0)
  last_snp = previous
  if len(snp):
    last_snp = (str(chunk.chrom[snp[-1]]), int(chunk.pos[snp[-1]]))
    chrom, pos = chunk.chrom[snp], chunk.pos[snp]
    dup = np.zeros(len(snp), bool)
    dup[1:] = (chrom[1:] == chrom[:-1]) & (pos[1:] == pos[:-1])
    if previous is not None:
      dup[0] = (chrom[0], int(pos[0])) == previous
    mark(np.isin(np.arange(s), snp[dup]), 'duplicate')

  dosage = chunk.dosage_SxN
  groups = np.zeros(dosage.shape[1], np.int64) if hwe_groups_N is None else np.asarray(hwe_groups_N)
  fit = groups >= 0
  n = int(fit.sum())
  counts_SxGx3 = genotype_counts(dosage if fit.all() else dosage[:, fit], groups[fit])
  counts_Sx3 = counts_SxGx3.sum(axis=1)
  num_called = counts_Sx3.sum(axis=1)
  alt_count = counts_Sx3[:, 1] + 2 * counts_Sx3[:, 2]
  call_rate = num_called / max(n, 1)
  mark(call_rate < qc_cfg.min_call_rate, 'call_rate')
  freq = np.divide(alt_count, 2 * num_called, out=np.zeros(s), where=num_called > 0)
  maf = np.minimum(freq, 1 - freq)
  mark((maf < qc_cfg.min_maf) | (num_called == 0), 'maf')
  if qc_cfg.min_hwe_p > 0:
    todo = np.flatnonzero((reason < 0) & ~sex_S)
    if len(todo):
      p = np.ones(len(todo))
      for g in range(counts_SxGx3.shape[1]):
        c = counts_SxGx3[todo, g]
        p = np.minimum(p, hwe_exact_p(c[:, 1], c[:, 0], c[:, 2]))
      mark(np.isin(np.arange(s), todo[p < qc_cfg.min_hwe_p]), 'hwe')

  keep = reason < 0
  kept = dosage[keep].astype(np.int8, copy=False)  # a copy, filled in place
  missing = kept < 0
  num_missing = int(np.count_nonzero(missing))
  fill = np.floor(alt_count[keep] / np.maximum(num_called[keep], 1) + 0.5).astype(np.int8)
  phase = chunk.hap0_SxN is not None
  if phase:
    hap0 = chunk.hap0_SxN[keep]
    unphased = int(chunk.unphased_het_S[keep].sum())
  if num_missing:
    rows, cols = np.nonzero(missing)
    kept[rows, cols] = fill[rows]
    if phase:  # a filled call: 0|0, 1|0 (phase unknown) or 1|1
      hap0[rows, cols] = np.minimum(fill, 1)[rows]
      unphased += int(np.count_nonzero(fill[rows] == 1))
  if not phase:  # no phase: every heterozygous call is 1|0, phase unknown
    hap0 = np.minimum(kept, 1)
    unphased = int(np.count_nonzero(kept == 1))
  dropped = {name: int((reason == i).sum()) for i, name in enumerate(REASONS)}
  haploid = 0 if chunk.haploid_calls_S is None else int(chunk.haploid_calls_S[keep].sum())
  return QcResult(keep, kept, hap0, dropped, num_missing, unphased, haploid, freq[keep], last_snp)
