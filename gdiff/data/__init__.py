"""Genotypes in: simulate -> ingest (+ qc) -> labels and splits -> the on-disk cohort.

simulate  stdpopsim/msprime cohorts written as a real VCF.gz + labels TSV
sources   which reader opens data.vcf/plink/pgen; several files as one cohort; BGEN refused
vcf       VCF/VCF.gz/BCF reader (scikit-allel, every line checked)
plink     PLINK 1 .bed/.bim/.fam reader (bed-reader)
pgen      plink2 .pgen/.pvar/.psam reader (pgenlib)
ingest    streams a reader's chunks through QC into HDF5 shards
ingest_parallel  the same over genomic regions in worker processes
genotypes what a VCF call and a chromosome name mean (checked call by call)
qc        per-chunk variant filters, HWE exact test, missing-call fill
splits    label and split tables, stratified seeded splits
prepare   the data stage that ties them together (`prepare.prepare`)
cohort    the on-disk format every later stage reads
dataset   the embedded splits as a TFDS/grain dataset (embedding stage)
"""
