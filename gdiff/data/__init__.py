"""Genotypes in: simulate -> ingest (+ qc) -> labels and splits -> the on-disk cohort.

simulate  stdpopsim/msprime cohorts written as a real VCF.gz + labels TSV
ingest    streaming VCF/VCF.gz/BCF and PLINK readers into HDF5 shards
genotypes what a VCF call and a chromosome name mean (checked call by call)
qc        per-chunk variant filters, HWE exact test, missing-call fill
splits    label and split tables, stratified seeded splits
prepare   the data stage that ties them together (`prepare.prepare`)
cohort    the on-disk format every later stage reads
dataset   the embedded splits as a TFDS/grain dataset (embedding stage)
"""
