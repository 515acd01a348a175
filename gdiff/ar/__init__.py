"""The local autoregressive generator: haplotypes (or genotypes) SNP by SNP.

model    the model: each SNP's allele given the k SNPs before it, the class and
         class-specific LD (`ARConfig`, tables, logits, penalty).
fit      the convex fit, block by block of SNPs, one block per device.
newton   its default solver: per-SNP Newton steps to the penalised optimum.
sampler  the sampler: one scan over the SNPs in genome order.
stage    the train and sample stages of the pipeline for this generator.
"""
