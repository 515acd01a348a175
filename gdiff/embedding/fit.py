"""Fits the embedding on the train split and writes it with the embedded splits.

`fit_and_write(emb_cfg, data_dir, emb_dir)` writes (via a temporary directory
renamed at the end, `gdiff.workdir.replacing`, so a crash leaves no half-written
embedding and a folder gdiff did not write is never replaced):
  codec.npz      the fitted `Codec` (`Codec.load`).
  mask.npy       (G, C) bool real entries.
  groups.tsv     group, name, chrom, start, end, snps, components.
  manifest.json  shapes, split sizes, grouping, rule, group size histogram and the
                 reconstruction quality of decode(encode(x)) on val.
  tfds/          the embedded splits as an array_record TFDS dataset (gdiff.data.dataset).

Nothing here reads a val or test genotype before the codec is final: the PCA,
the z-score and the decode thresholds see train rows only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import numpy as np

from gdiff import errors
from gdiff import workdir as wd
from gdiff.data import cohort as cohort_lib
from gdiff.data import dataset
from gdiff.embedding import codec as codec_lib
from gdiff.embedding import grouping, pca

GROUPS_FILE = 'groups.tsv'


def check_config(emb_cfg) -> None:
  """Raises InputError naming the option for bad `embedding` settings (before any stage)."""
  if emb_cfg.decode not in codec_lib.DECODERS:
    raise errors.InputError(
      f'embedding.decode={emb_cfg.decode!r} is unknown (known: {", ".join(codec_lib.DECODERS)})'
    )
  if int(emb_cfg.group_multiple) < 1:
    raise errors.InputError(f'embedding.group_multiple must be >= 1, got {emb_cfg.group_multiple}')
  grouping.check_config(emb_cfg)
  pca.check_config(emb_cfg)


def input_files(emb_cfg) -> dict[str, str]:
  """{option: path} of the input files of the `embedding` section."""
  if emb_cfg.grouping == 'genes' and emb_cfg.annotation:
    return {'embedding.annotation': emb_cfg.annotation}
  return {}


def fit_codec(dosage_train_NxS: np.ndarray, groups: grouping.Groups, emb_cfg) -> codec_lib.Codec:
  """Fits PCA, z-score and decode thresholds on training dosages.

  Args:
    dosage_train_NxS: (N, S) int8 train genotypes only.
    groups: SNP groups.
    emb_cfg: the `embedding` config section.
  Returns:
    The fitted Codec, groups padded to a multiple of `embedding.group_multiple`.
  """
  check_config(emb_cfg)
  multiple = int(emb_cfg.group_multiple)
  fitted = pca.fit(dosage_train_NxS, groups, emb_cfg)
  slots = int(emb_cfg.slots)
  num_groups = -(-groups.num_groups // multiple) * multiple
  mask = np.zeros((num_groups, slots), bool)
  mask[: groups.num_groups] = np.arange(slots)[None] < fitted.components_G[:, None]
  plain = codec_lib.Codec(
    group_S=groups.group_S.astype(np.int32),
    mean_S=fitted.mean_S,
    loadings_SxC=fitted.loadings_SxC,
    emb_mean_GxC=np.zeros((num_groups, slots), np.float32),
    emb_std_GxC=np.ones((num_groups, slots), np.float32),
    thresholds_Sx2=np.tile(np.array([0.5, 1.5], np.float32), (len(groups.group_S), 1)),
    mask_GxC=mask,
    genotype_cdf_Sx2=codec_lib.genotype_cdf(dosage_train_NxS),
    decoder=str(emb_cfg.decode),
  )
  emb_mean, emb_std = codec_lib.normalisation(plain.encode(dosage_train_NxS), mask)
  normed = dataclasses.replace(plain, emb_mean_GxC=emb_mean, emb_std_GxC=emb_std)
  recon = normed.reconstruct(normed.encode(dosage_train_NxS))
  thresholds = codec_lib.calibrate_thresholds(recon, dosage_train_NxS)
  return dataclasses.replace(normed, thresholds_Sx2=thresholds)


def reconstruction_quality(
  codec: codec_lib.Codec, dosage_NxS: np.ndarray, decoder: str | None = None
) -> dict:
  """Concordance and allele-frequency r of decode(encode(x)) against x.

  Args:
    codec: a fitted codec.
    dosage_NxS: real genotypes.
    decoder: a key of `codec_lib.DECODERS` (default: the codec's).
  Returns:
    {'concordance', 'concordance_nonref', 'allele_freq_r', 'genotype_freq_abs_err'}.
  """
  decoded = codec.decode(codec.encode(dosage_NxS), decoder=decoder)
  real = np.asarray(dosage_NxS)
  nonref = (real > 0) | (decoded > 0)
  af_real = real.mean(0) / 2
  af_dec = decoded.mean(0) / 2
  r = np.corrcoef(af_real, af_dec)[0, 1] if af_real.std() > 0 and af_dec.std() > 0 else 1.0
  freq_err = np.mean(
    [np.abs((real == k).mean(0) - (decoded == k).mean(0)).mean() for k in range(3)]
  )
  return {
    'concordance': float((decoded == real).mean()),
    'concordance_nonref': float((decoded == real)[nonref].mean()) if nonref.any() else 1.0,
    'allele_freq_r': float(r),
    'genotype_freq_abs_err': float(freq_err),
  }


def _write_groups(path: str, groups: grouping.Groups, components_G: np.ndarray) -> None:
  sizes = groups.sizes
  with open(path, 'w') as f:
    f.write('group\tname\tchrom\tstart\tend\tsnps\tcomponents\n')
    for g in range(groups.num_groups):
      f.write(
        f'{g}\t{groups.names[g]}\t{groups.chrom[g]}\t{groups.start[g]}\t{groups.end[g]}'
        f'\t{sizes[g]}\t{components_G[g]}\n'
      )


def _histogram(sizes: np.ndarray) -> dict:
  edges = [1, 2, 5, 9, 17, 21, 33, 65, 129, 257, 513, 1025]
  hist = {}
  for lo, hi in zip(edges[:-1], edges[1:]):
    hist[f'{lo}-{hi - 1}'] = int(((sizes >= lo) & (sizes < hi)).sum())
  hist[f'>={edges[-1]}'] = int((sizes >= edges[-1]).sum())
  return hist


def fit_and_write(emb_cfg, data_dir: str, emb_dir: str) -> codec_lib.Codec:
  """Fits the embedding on train and writes codec, mask, manifest and the TFDS dataset.

  Args:
    emb_cfg: the `embedding` config section.
    data_dir: an ingested cohort (gdiff.data.cohort layout).
    emb_dir: output directory (replaced if gdiff wrote it; any other folder is refused).
  Returns:
    The fitted Codec.
  """
  cohort = cohort_lib.load_cohort(data_dir)
  groups = grouping.make_groups(emb_cfg, cohort.variants())
  dosage = {split: cohort.dosages(split) for split in cohort_lib.SPLITS}
  if len(dosage['train']) < 2:
    raise errors.InputError(f'{data_dir}: the train split has {len(dosage["train"])} samples')
  codec = fit_codec(dosage['train'], groups, emb_cfg)
  emb = {split: codec.encode(x) for split, x in dosage.items()}
  labels = {split: cohort.label_ids[cohort.indices(split)] for split in cohort_lib.SPLITS}
  quality = {}
  for split in ('train', 'val'):
    if len(dosage[split]):
      quality[split] = {
        name: reconstruction_quality(codec, dosage[split], decoder=name)
        for name in codec_lib.DECODERS
      }
  components = np.asarray(codec.mask_GxC[: groups.num_groups].sum(1))
  manifest = {
    'num_groups': codec.num_groups,
    'slots': codec.slots,
    'classes': list(cohort.classes),
    'splits': {split: int(len(x)) for split, x in dosage.items()},
    'num_snps': codec.num_snps,
    'num_real_groups': groups.num_groups,
    'real_entries': int(codec.mask_GxC.sum()),
    'grouping': str(emb_cfg.grouping),
    'rule': str(emb_cfg.rule),
    'decoder': codec.decoder,
    'group_size_histogram': _histogram(groups.sizes),
    'components_histogram': {
      str(k): int((components == k).sum())
      for k in range(codec.slots + 1)
      if (components == k).any()
    },
    'reconstruction': quality,
  }
  with wd.replacing(emb_dir) as tmp:
    codec.save(os.path.join(tmp, wd.CODEC_FILE))
    np.save(os.path.join(tmp, wd.MASK_FILE), np.asarray(codec.mask_GxC))
    _write_groups(os.path.join(tmp, GROUPS_FILE), groups, components)
    dataset.write_splits(
      tmp, {s: (emb[s], labels[s]) for s in cohort_lib.SPLITS}, classes=cohort.classes
    )
    with open(os.path.join(tmp, wd.EMBEDDING_MANIFEST_FILE), 'w') as f:
      json.dump(manifest, f, indent=1)
  logging.info(
    'embedding: %d SNPs -> (%d, %d), val concordance %s',
    codec.num_snps,
    codec.num_groups,
    codec.slots,
    quality.get('val', {}).get(codec.decoder, {}).get('concordance'),
  )
  return codec
