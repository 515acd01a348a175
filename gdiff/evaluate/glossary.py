"""The report's glossary (one line per metric) and the caption of every figure.

GLOSSARY: (metric, what it measures, good direction, reference value). CAPTIONS: figure
name (report.py's `_figures`) -> caption; '{held}' is the held-out split's name. A new
metric or figure adds its line here; tests check every figure has a caption.
"""

from __future__ import annotations

GLOSSARY = (
  (
    'recovery',
    'accuracy on real held-out people of a classifier trained on the synthetic cohort, '
    'divided by the same classifier trained on real train (embedding classifiers: JAX; '
    'genotype classifiers: scikit-learn logistic regression and gradient boosting)',
    'higher, 1 = as useful as real data',
    'target ≥ 0.95; the independent-SNPs row shows what per-SNP frequencies alone give',
  ),
  (
    'AA_truth / AA_syn / privacy loss (NNAA)',
    'nearest-neighbour adversarial accuracy: how often a real (AA_truth) or synthetic '
    "(AA_syn) person's nearest neighbour is from its own set; privacy loss = AA_TS(held "
    'out) − AA_TS(train)',
    'AA nearer 0.5; privacy loss ≤ 0',
    'target 0.4–0.6; privacy loss ≤ 0.02',
  ),
  (
    'membership AUC (MIA)',
    'an attacker scores each real person by the distance to the nearest synthetic person '
    'and tries to tell training members from held-out people',
    'lower, 0.5 = chance',
    '0.5 (what a fresh real sample gives); target ≤ 0.55',
  ),
  (
    'identical copies / DCR',
    'synthetic people equal to a training person; distance to the closest record compared '
    "with the held-out people's distances to train",
    'copies 0; DCR share below the held-out 5th percentile ≈ 0.05',
    'real held-out row: its own distances',
  ),
  (
    'AF r',
    'correlation of allele frequencies with real train',
    'higher',
    'target ≥ 0.99; real held-out row',
  ),
  (
    'LD r² corr',
    'correlation of r² between SNP pairs up to evaluate.ld_max_distance_snps apart with '
    'real train (linkage disequilibrium kept)',
    'higher',
    'target ≥ 0.97; real held-out row',
  ),
  (
    'PCA 2-sample AUC',
    'a classifier on the top principal components (fit on real train) telling synthetic '
    'from real held-out people',
    'nearer 0.5',
    'target ≤ 0.55; real held-out vs train row',
  ),
  (
    'detection AUC',
    'a cross-validated logistic regression on whole genotypes (dosages and neighbouring '
    'SNP products) telling real held-out people from the cohort',
    'lower; at or below 0.5 is chance',
    'target ≤ 0.60; real train vs real held-out row (two real samples)',
  ),
  (
    'F_ST, heterozygosity',
    'differentiation between classes and heterozygous share per person, against real train',
    'equal to real train',
    'real held-out row',
  ),
  (
    'GWAS direction agreement',
    'share of the real-train GWAS top hits (plink2 --glm) whose effect has the same sign '
    'in a GWAS of the cohort',
    'higher, 1 = every hit replicates in direction',
    'real held-out row (a real sample of that size)',
  ),
  (
    'GWAS Spearman −log10 p',
    'rank correlation of the strength of association at the real top hits',
    'higher',
    'real held-out row',
  ),
  (
    'λGC',
    'genomic inflation of the cohort GWAS: median χ² / 0.455',
    'near the real-train value (≈ 1 without structure)',
    'lambda_gc_real_train',
  ),
  (
    'allele-frequency attacks (af_lr, af_homer)',
    "membership tests that compare a target's genotypes with the synthetic cohort's allele "
    "frequencies and a reference sample's (Sankararaman 2009 likelihood ratio; Homer 2008)",
    'AUC near 0.5',
    '0.5 (chance)',
  ),
  (
    'calibrated distance attack',
    "log of a target's distance to the nearest reference person over its distance to the "
    'nearest synthetic one: members sit closer to the synthetic cohort than their population '
    'predicts',
    'AUC near 0.5',
    '0.5 (chance)',
  ),
  (
    'KING relatives',
    'people whose KING-robust kinship with a training person reaches duplicate (> 0.354), '
    'first- (> 0.177) or second-degree (> 0.088) range; needs genome-wide SNPs (≥ 100 Mb)',
    'no more than the real held-out people',
    'real held-out row',
  ),
  (
    'inter-chromosome r² excess',
    'mean r² of dosages of SNP pairs on different chromosomes minus 1/(n−1), overall and '
    'within class: population structure shared across chromosomes',
    'near the real-train value',
    'real train row',
  ),
  (
    'PC1 agreement',
    'within a class, |correlation| across people of PC1 scores of two chromosomes (axes fit '
    'on real train), averaged over chromosome pairs: ancestry a person carries genome-wide',
    'near the real-train value',
    'real train row',
  ),
  (
    'mosaic curve',
    'copies of real haplotype segments of mean length L SNPs from same-class people: '
    'short L private, long L faithful; gdiff dominates it when it beats the curve at its '
    'own membership AUC on every axis',
    'gdiff better on every axis',
    'rows mosaic@L',
  ),
)

CAPTIONS = {
  'pca': 'Top two principal components (fit on real train): real train (grey), real {held} '
  '(blue) and each cohort (red). A cohort should cover the real clouds without extra ones.',
  'ld_decay': 'Mean r² between SNPs by distance in SNPs: real train (thick), real {held} '
  '(dashed) and each cohort. Independent SNPs sit at the floor; a faithful cohort on the '
  'real lines.',
  'ld_distance': 'Mean r² by distance in base pairs (bins of the pairs at most '
  'evaluate.ld_max_distance_snps apart). Closer to the real lines is better.',
  'ld_maf': 'Mean r² by the lower minor-allele frequency of the pair (real train). Rare-'
  'variant LD is the hardest to keep.',
  'mosaic_curve': 'gdiff and the baselines against the mosaic curve (grey line, labelled by '
  'segment length): membership AUC (x, lower is more private) against each realism axis; '
  'dashed lines and grey bands are the targets.',
  'af_scatter': 'Allele frequency of each SNP: real train (x) against each cohort (y); the '
  'diagonal is perfect.',
  'dcr': 'Distance to the closest training person (Hamming): real {held} people (what '
  'strangers give) against each cohort; mass near 0 means copies.',
  'heterozygosity': 'Share of heterozygous SNPs per person: real train (black) and each cohort.',
  'augmentation': 'Accuracy on {held} of a classifier trained on a fraction of real train, '
  "alone and plus gdiff's cohort (mean ± sd over seeds); an upper bound, as the generator "
  'saw all of real train.',
}


def caption(name: str, held: str) -> str:
  """The caption of figure `name` ('' for an unknown one)."""
  return CAPTIONS.get(name, '').format(held=held)
