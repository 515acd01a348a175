"""GWAS concordance: does a GWAS on the synthetic cohort find what one on real train finds?

For a case/control label only (two classes). `plink2 --glm allow-no-covars firth-fallback`
runs on real train (once per evaluation) and on the judged cohort, each written as a
temporary PLINK 1 fileset (`gdiff.data.writers.write_plink`); then, at the real top hits:

- direction_agreement: share of hits whose effect (log odds ratio of the same allele) has
  the same sign in the cohort (a hit the cohort cannot test counts as a disagreement);
- spearman_log10p: Spearman correlation of −log10 p between real train and the cohort;
- lambda_gc of each (median χ² / 0.4549 over every tested SNP: inflation).

Hits: the SNPs with real p < `HIT_P`, or the `MIN_HITS` smallest real p when fewer reach
it. Cohorts with more than two classes (ancestry labels) are skipped: a GWAS needs a
phenotype, and between populations nearly every SNP differs in frequency. Without plink2
on PATH the family is skipped with one line.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import subprocess
import tempfile

import numpy as np

from gdiff.data import cohort as cohort_lib
from gdiff.data import writers

HIT_P = 1e-3
MIN_HITS = 50
CHI2_MEDIAN_1DF = 0.454936  # median of χ²(1): λGC = median(χ²) / this
PLINK = 'plink2'


@dataclasses.dataclass(frozen=True)
class Association:
  """One GWAS: per SNP log odds ratio of `allele_S` and p (NaN: not tested)."""

  log_or_S: np.ndarray
  p_S: np.ndarray
  allele_S: np.ndarray

  @property
  def lambda_gc(self) -> float:
    from scipy import stats

    p = self.p_S[np.isfinite(self.p_S)]
    if not len(p):
      return float('nan')
    return float(np.median(stats.chi2.isf(p, 1)) / CHI2_MEDIAN_1DF)


def skip_reason(classes, plink: str = PLINK) -> str | None:
  """Why the GWAS does not run here (None: it does)."""
  if len(classes) != 2:
    return (
      f'{len(classes)} classes: a GWAS needs a case/control label (between populations '
      'nearly every SNP differs in frequency)'
    )
  if shutil.which(plink) is None:
    return f'{plink} is not on PATH'
  return None


def case_codes(label_ids_N: np.ndarray, classes) -> np.ndarray:
  """plink's 1 (control) / 2 (case): names as `writers.plink_phenotype`, else class 1 is
  the case (direction agreement and the p correlation do not depend on which)."""
  labels = np.asarray(classes)[label_ids_N]
  codes = writers.plink_phenotype(labels, classes)
  return np.where(label_ids_N == 1, '2', '1') if codes is None else codes


def run_glm(dosage_NxS, label_ids_N, classes, chrom_S, pos_S, plink: str = PLINK) -> Association:
  """plink2 --glm of one cohort against its case/control label (see the module docstring)."""
  s = dosage_NxS.shape[1]
  variants = cohort_lib.Variants(
    chrom=np.asarray(chrom_S).astype(str),
    pos=np.arange(1, s + 1) if pos_S is None else np.asarray(pos_S),
    id=np.array([f'v{i}' for i in range(s)]),
    ref=np.full(s, 'A'),
    alt=np.full(s, 'G'),
  )
  samples = [f'i{i}' for i in range(len(dosage_NxS))]
  with tempfile.TemporaryDirectory(prefix='gdiff-gwas-') as tmp:
    prefix = os.path.join(tmp, 'cohort')
    writers.write_plink(
      prefix, dosage_NxS, variants, samples, pheno=case_codes(label_ids_N, classes)
    )
    cmd = [
      plink,
      '--bfile',
      prefix,
      '--glm',
      'allow-no-covars',
      'firth-fallback',
      '--threads',
      '2',
      '--out',
      prefix,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    outputs = [f for f in os.listdir(tmp) if '.glm.' in f]
    if done.returncode != 0 or not outputs:
      raise RuntimeError(f'plink2 --glm failed ({done.returncode}): {done.stderr.strip()[-500:]}')
    return _read_glm(os.path.join(tmp, outputs[0]), s)


def _read_glm(path: str, num_snps: int) -> Association:
  """A plink2 .glm.logistic(.hybrid) table as per-SNP arrays in SNP order."""
  log_or, p = np.full(num_snps, np.nan), np.full(num_snps, np.nan)
  allele = np.full(num_snps, '', dtype=object)
  with open(path) as f:
    header = f.readline().lstrip('#').split()
    col = {name: i for i, name in enumerate(header)}
    for line in f:
      row = line.split()
      if col.get('TEST') is not None and row[col['TEST']] != 'ADD':
        continue
      i = int(row[col['ID']][1:])
      allele[i] = row[col['A1']]
      effect = row[col['OR']] if 'OR' in col else row[col['BETA']]
      try:
        v = float(effect)
        log_or[i] = math.log(v) if 'OR' in col and v > 0 else (v if 'BETA' in col else np.nan)
        p[i] = float(row[col['P']])
      except ValueError:  # 'NA': not tested (monomorphic, or the fit failed)
        continue
  return Association(log_or, p, allele)


def hits(real: Association) -> np.ndarray:
  """The real top hits: p < HIT_P, or the MIN_HITS smallest p (SNP indices, by p)."""
  tested = np.flatnonzero(np.isfinite(real.p_S))
  order = tested[np.argsort(real.p_S[tested], kind='stable')]
  significant = int(np.sum(real.p_S[order] < HIT_P))
  return order[: max(significant, min(MIN_HITS, len(order)))]


def concordance(real: Association, judged: Association) -> dict:
  """direction agreement, Spearman of −log10 p at the real hits, λGC of both."""
  from scipy import stats

  top = hits(real)
  # The same allele's effect: flip where plink2 counted the other allele.
  flip = np.where(judged.allele_S[top] == real.allele_S[top], 1.0, -1.0)
  judged_effect = judged.log_or_S[top] * flip
  agree = np.sign(judged_effect) == np.sign(real.log_or_S[top])
  agree &= np.isfinite(judged_effect)
  judged_logp = -np.log10(np.where(np.isfinite(judged.p_S[top]), judged.p_S[top], 1.0))
  real_logp = -np.log10(real.p_S[top])
  rho = stats.spearmanr(real_logp, judged_logp).statistic if len(top) > 2 else float('nan')
  return {
    'num_hits': int(len(top)),
    'num_real_p_below': int(np.sum(real.p_S < HIT_P)),
    'hit_p': HIT_P,
    'direction_agreement': float(agree.mean()) if len(top) else float('nan'),
    'spearman_log10p': float(rho) if np.isfinite(rho) else float('nan'),
    'lambda_gc': judged.lambda_gc,
    'lambda_gc_real_train': real.lambda_gc,
  }
