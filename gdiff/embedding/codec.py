"""The fitted embedding: dosages (N, S) <-> normalised group PCA scores (N, G, C).

`Codec` is a frozen dataclass of arrays registered as a JAX pytree, so
`jax.jit(codec_lib.encode_block)(codec, dosage)` works, and `Codec.encode` /
`Codec.decode` process any number of rows in blocks (bounded memory, outputs on
the host). Loadings are stored per SNP, (S, C), with the group index of each SNP:
memory is O(S * C) whatever the largest group is (a dense (G, Smax, C) table
would hold G * Smax * C entries, e.g. 18k genes x 2k SNPs for real gene sets).

encode: raw_NxGxC = segment_sum_s (x - mean_S) * loadings_SxC; emb = mask * (raw - mu) / sd.
decode: recon_NxS = mean_S + sum_c raw[:, group_S, c] * loadings_SxC; then genotypes
        by the decoder named in `DECODERS`:
  calibrated  per-SNP thresholds (t1, t2) on the reconstructed dosage, chosen on
              train so that decoded genotype frequencies equal the real train
              ones (quantile matching); genotype = (r > t1) + (r > t2).
  round       round and clip to {0, 1, 2}.
A generated cohort's scores are not distributed like train reconstructions, so the
thresholds fit on train give it other genotype frequencies; `matched_thresholds`
refits them on that cohort's own reconstructions, to the train genotype frequencies
the codec keeps (`genotype_cdf_Sx2`).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

STD_FLOOR = 1e-2  # z-score divisor floor: components (near) constant on train
_BLOCK_ELEMENTS = 1 << 24  # rows x SNPs x slots per encode/decode block


@functools.partial(
  jax.tree_util.register_dataclass,
  data_fields=[
    'group_S',
    'mean_S',
    'loadings_SxC',
    'emb_mean_GxC',
    'emb_std_GxC',
    'thresholds_Sx2',
    'mask_GxC',
    'genotype_cdf_Sx2',
  ],
  meta_fields=['decoder'],
)
@dataclasses.dataclass(frozen=True)
class Codec:
  """A fitted embedding. All arrays; `decoder` names an entry of `DECODERS`."""

  group_S: np.ndarray  # (S,) int32 group of each SNP
  mean_S: np.ndarray  # (S,) float32 train mean dosage
  loadings_SxC: np.ndarray  # (S, C) float32, zero beyond the group's components
  emb_mean_GxC: np.ndarray  # (G, C) float32 train mean of the raw scores
  emb_std_GxC: np.ndarray  # (G, C) float32 train std of the raw scores (floored; 1 on padding)
  thresholds_Sx2: np.ndarray  # (S, 2) float32 calibrated decode thresholds
  mask_GxC: np.ndarray  # (G, C) bool real entries
  genotype_cdf_Sx2: np.ndarray  # (S, 2) float32 train fractions of genotype 0 and of <= 1
  decoder: str = 'calibrated'

  @property
  def num_snps(self) -> int:
    return self.group_S.shape[0]

  @property
  def num_groups(self) -> int:
    return self.mask_GxC.shape[0]

  @property
  def slots(self) -> int:
    return self.mask_GxC.shape[1]

  def snp_index_GxK(self) -> np.ndarray:
    """(G, K) int32 SNP indices of each group (ascending), padded with -1; K = largest group."""
    group_S = np.asarray(self.group_S)
    sizes = np.bincount(group_S, minlength=self.num_groups)
    out = np.full((self.num_groups, max(1, sizes.max(initial=0))), -1, np.int32)
    order = np.argsort(group_S, kind='stable')
    slot = np.arange(len(order)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    out[group_S[order], slot] = order
    return out

  def encode(self, dosage_NxS, block_rows: int | None = None):
    """Normalised embedding, float32 (N, G, C), zero on padding.

    Args:
      dosage_NxS: (N, S) genotypes (int8 or float).
      block_rows: rows per block (default: bounded by memory).
    Returns:
      numpy float32 (N, G, C) (a traced array when called under jit).
    """
    return _blocked(_encode_jit, self, dosage_NxS, block_rows, self.num_snps)

  def decode(self, emb_NxGxC, block_rows: int | None = None, decoder: str | None = None):
    """Genotypes int8 (N, S) in {0, 1, 2} from a normalised embedding.

    Args:
      emb_NxGxC: (N, G, C) normalised embedding (padding entries are ignored).
      block_rows: rows per block (default: bounded by memory).
      decoder: overrides `self.decoder` (a key of `DECODERS`).
    Returns:
      numpy int8 (N, S) (a traced array when called under jit).
    """
    codec = self if decoder is None else dataclasses.replace(self, decoder=decoder)
    return _blocked(_decode_jit, codec, emb_NxGxC, block_rows, self.num_snps)

  def reconstruct(self, emb_NxGxC, block_rows: int | None = None):
    """Reconstructed (continuous) dosage float32 (N, S), before the decoder."""
    return _blocked(_reconstruct_jit, self, emb_NxGxC, block_rows, self.num_snps)

  def save(self, path: str) -> None:
    """Writes all arrays and the decoder name to a .npz file."""
    arrays = {
      f.name: np.asarray(getattr(self, f.name))
      for f in dataclasses.fields(self)
      if f.name != 'decoder'
    }
    with open(path, 'wb') as f:
      np.savez(f, decoder=np.array(self.decoder), **arrays)

  @classmethod
  def load(cls, path: str) -> Codec:
    """Reads a codec written by `save`."""
    with np.load(path) as z:
      kwargs = {f.name: z[f.name] for f in dataclasses.fields(cls) if f.name != 'decoder'}
      return cls(decoder=str(z['decoder']), **kwargs)


def raw_scores(codec: Codec, dosage_BxS) -> jax.Array:
  """Un-normalised PCA scores (B, G, C) (zero beyond each group's components)."""
  x = jnp.asarray(dosage_BxS, jnp.float32) - codec.mean_S
  per_snp = x[:, :, None] * codec.loadings_SxC[None]  # (B, S, C)
  out = jax.ops.segment_sum(
    jnp.swapaxes(per_snp, 0, 1), codec.group_S, num_segments=codec.mask_GxC.shape[0]
  )  # (G, B, C)
  return jnp.swapaxes(out, 0, 1)


def encode_block(codec: Codec, dosage_BxS) -> jax.Array:
  """Pure, jit-able encode of one block of rows: float32 (B, G, C)."""
  raw = raw_scores(codec, dosage_BxS)
  z = (raw - codec.emb_mean_GxC) / codec.emb_std_GxC
  return jnp.where(codec.mask_GxC, z, 0.0).astype(jnp.float32)


def reconstruct_block(codec: Codec, emb_BxGxC) -> jax.Array:
  """Pure, jit-able continuous dosage (B, S) from a normalised embedding."""
  emb = jnp.asarray(emb_BxGxC, jnp.float32)
  raw = jnp.where(codec.mask_GxC, emb * codec.emb_std_GxC + codec.emb_mean_GxC, 0.0)
  per_snp = jnp.take(raw, codec.group_S, axis=1)  # (B, S, C)
  return codec.mean_S + jnp.einsum('bsc,sc->bs', per_snp, codec.loadings_SxC)


def _decode_calibrated(recon_BxS, thresholds_Sx2):
  return (recon_BxS > thresholds_Sx2[:, 0]).astype(jnp.int8) + (
    recon_BxS > thresholds_Sx2[:, 1]
  ).astype(jnp.int8)


def _decode_round(recon_BxS, thresholds_Sx2):
  del thresholds_Sx2
  return jnp.clip(jnp.round(recon_BxS), 0, 2).astype(jnp.int8)


DECODERS = {'calibrated': _decode_calibrated, 'round': _decode_round}


def decode_block(codec: Codec, emb_BxGxC) -> jax.Array:
  """Pure, jit-able decode of one block of rows: int8 (B, S) in {0, 1, 2}."""
  return DECODERS[codec.decoder](reconstruct_block(codec, emb_BxGxC), codec.thresholds_Sx2)


_encode_jit = jax.jit(encode_block)
_decode_jit = jax.jit(decode_block)
_reconstruct_jit = jax.jit(reconstruct_block)


def _blocked(fn, codec: Codec, x, block_rows: int | None, num_snps: int):
  """Applies fn(codec, rows) in row blocks; outputs gathered on the host."""
  if isinstance(x, jax.core.Tracer):
    return fn(codec, x)
  x = np.asarray(x)
  codec = jax.device_put(codec)  # once, not per block
  if block_rows is None:
    block_rows = max(1, _BLOCK_ELEMENTS // max(1, num_snps * codec.slots))
  n = x.shape[0]
  if n <= block_rows:
    return np.asarray(fn(codec, x))
  parts = []
  for lo in range(0, n, block_rows):
    block = x[lo : lo + block_rows]
    short = block_rows - block.shape[0]
    if short:  # pad the last block: one compiled shape for all blocks
      block = np.concatenate([block, np.zeros((short,) + block.shape[1:], block.dtype)])
    out = np.asarray(fn(codec, block))
    parts.append(out[: out.shape[0] - short])
  return np.concatenate(parts)


def normalisation(raw_NxGxC: np.ndarray, mask_GxC: np.ndarray):
  """Per-entry z-score (mean, std) of train scores; std floored, (0, 1) on padding."""
  mean = np.where(mask_GxC, raw_NxGxC.mean(0), 0.0).astype(np.float32)
  std = np.where(mask_GxC, np.maximum(raw_NxGxC.std(0), STD_FLOOR), 1.0).astype(np.float32)
  return mean, std


def genotype_cdf(dosage_NxS: np.ndarray) -> np.ndarray:
  """(S, 2) float32: the fraction of people with genotype 0, and with genotype <= 1."""
  return np.stack([(dosage_NxS == 0).mean(0), (dosage_NxS <= 1).mean(0)], 1).astype(np.float32)


def calibrate_thresholds(recon_NxS: np.ndarray, dosage_NxS: np.ndarray) -> np.ndarray:
  """Per-SNP thresholds that make decoded train genotype frequencies match the real ones.

  With n0 zeros and n1 ones among the N train genotypes of a SNP, t1 lies between
  the n0-th and (n0+1)-th smallest reconstructed dosages (midpoint) and t2 between
  the (n0+n1)-th and next. When a genotype class is absent on train, the threshold
  falls back to the rounding one (0.5 or 1.5), moved only as far as needed to keep
  every train value on its side. With an exact reconstruction this gives t = 0.5, 1.5.

  Args:
    recon_NxS: reconstructed train dosages (float).
    dosage_NxS: real train genotypes.
  Returns:
    (S, 2) float32 thresholds.
  """
  counts = np.stack([(dosage_NxS == 0).sum(0), (dosage_NxS <= 1).sum(0)], 1)  # (S, 2)
  return thresholds_for_counts(recon_NxS, counts)


def thresholds_for_counts(recon_NxS: np.ndarray, counts_Sx2: np.ndarray) -> np.ndarray:
  """Thresholds putting `counts_Sx2[:, 0]` rows below t1 and `counts_Sx2[:, 1]` below t2."""
  recon = np.sort(np.asarray(recon_NxS, np.float64), axis=0)
  n = recon.shape[0]
  counts = np.asarray(counts_Sx2)
  out = np.empty(counts.shape, np.float64)
  cols = np.arange(recon.shape[1])
  for j, default in enumerate((0.5, 1.5)):
    k = counts[:, j]
    below = recon[np.clip(k - 1, 0, n - 1), cols]
    above = recon[np.clip(k, 0, n - 1), cols]
    mid = 0.5 * (below + above)
    eps = 1e-4 * np.maximum(1.0, np.abs(above))
    out[:, j] = np.where(
      k == 0, np.minimum(default, above - eps), np.where(k == n, np.maximum(default, below), mid)
    )
  out[:, 1] = np.maximum(out[:, 1], out[:, 0])
  return out.astype(np.float32)


def matched_thresholds(codec: Codec, emb_NxGxC: np.ndarray, snp_block: int = 8192) -> np.ndarray:
  """Thresholds under which the decoded `emb_NxGxC` has the train genotype frequencies.

  Quantile matching as in `calibrate_thresholds`, on the reconstructions of these
  rows with the train frequencies the codec keeps (`genotype_cdf_Sx2`), so a
  generated cohort's allele and genotype frequencies equal train's. SNPs are done
  in blocks of `snp_block` (memory N x snp_block floats).

  Args:
    codec: a fitted codec.
    emb_NxGxC: the rows to calibrate on (normalised embedding).
    snp_block: SNPs per block.
  Returns:
    (S, 2) float32 thresholds (for `dataclasses.replace(codec, thresholds_Sx2=...)`).
  """
  n, s = len(emb_NxGxC), codec.num_snps
  counts_Sx2 = np.rint(np.asarray(codec.genotype_cdf_Sx2, np.float64) * n).astype(np.int64)
  out = np.empty((s, 2), np.float32)
  for lo in range(0, s, snp_block):
    hi = min(lo + snp_block, s)
    part = dataclasses.replace(
      codec,
      group_S=codec.group_S[lo:hi],
      mean_S=codec.mean_S[lo:hi],
      loadings_SxC=codec.loadings_SxC[lo:hi],
      thresholds_Sx2=codec.thresholds_Sx2[lo:hi],
      genotype_cdf_Sx2=codec.genotype_cdf_Sx2[lo:hi],
    )
    out[lo:hi] = thresholds_for_counts(part.reconstruct(emb_NxGxC), counts_Sx2[lo:hi])
  return out
