"""Evaluation of synthetic cohorts: utility, privacy/diversity, genetic realism, baselines.

distances    blocked k-nearest-neighbour search (angular, Hamming, Euclidean).
privacy      NNAA, distance to closest record, copies, membership inference.
genetics     allele/genotype frequencies, LD (by SNP and bp distance, by MAF), PCA,
             heterozygosity, F_ST.
attacks      membership attacks with a reference population (allele-frequency LR, Homer,
             calibrated distance), per-person exposure, KING relatives, the gate's counts.
detection    whole-genotype detection AUC: a classifier telling held-out real from synthetic.
classifiers  small JAX/Flax classifiers: recovery rate and augmentation.
baselines    simple generators (independent, gaussian, resample, mosaic).
protocol     the held-out split, the classifiers' real sets, the hard pair, the notes.
context      what every metric family reads: the real side, built once.
families     the metric families (privacy, realism, utility) and the cohorts they judge.
report       targets, the paper's numbers, metrics.json / report.html / report.md.
run          the evaluate stage, `evaluate(config, workdir)`.
"""
