"""Evaluation of synthetic cohorts: utility, privacy/diversity, genetic realism, baselines.

distances    blocked k-nearest-neighbour search (angular, Hamming, Euclidean).
privacy      NNAA, distance to closest record, copies, membership inference.
genetics     allele/genotype frequencies, LD (by SNP and bp distance, by MAF), PCA,
             heterozygosity, F_ST.
attacks      membership attacks with a reference population (allele-frequency LR, Homer,
             calibrated distance), per-person exposure, KING relatives, the gate's counts.
detection    whole-genotype detection AUC: a classifier telling held-out real from synthetic.
classifiers  small JAX/Flax classifiers: recovery rate and augmentation.
genotype_utility  scikit-learn classifiers on dosages: recovery in genotype space.
gwas         plink2 GWAS concordance with real train (case/control labels).
baselines    simple generators (independent, gaussian, resample, mosaic).
protocol     the held-out split, the classifiers' real sets, the hard pair, the notes.
context      what every metric family reads: the real side, built once.
families     the metric families (privacy, realism, utility) and the cohorts they judge.
report       targets, the paper's numbers, metrics.json / report.html / report.md.
verdict      the report's plain-language verdict, guarantees (DP, release gate), warnings.
glossary     one line per metric, a caption per figure.
provenance   version, inputs, config hash and the cohort file a report judged.
run          the evaluate stage, `evaluate(config, workdir)`.
external     any cohort file (VCF, .h5) judged against a workdir (`gdiff.api.evaluate`).
"""
