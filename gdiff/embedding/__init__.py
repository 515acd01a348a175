"""Embedding: SNP groups -> per-group PCA -> normalised (N, G, C) with a mask, and back.

grouping  which SNPs share a PCA (windows or genes).
pca       batched per-group PCA fit on train rows (JAX eigh).
codec     the fitted Codec: encode dosages, decode embeddings to genotypes.
fit       fit on train, write codec/mask/manifest and the TFDS dataset.
"""
