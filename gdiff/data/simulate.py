"""Simulated cohorts: stdpopsim + msprime, offline and seeded, written as a real VCF.

The simulated cohort goes through the same ingest as a user's files: this
module only writes `cohort.vcf.gz` (bgzipped, phased GT) and `labels.tsv`
(columns `sample`, `label`), with the writers of `gdiff.data.writers`.

Each contig is an independent msprime simulation of a generic HomSap contig
with a flat recombination rate (no genetic-map download) and the demographic
model's own mutation rate. Sites are filtered in tskit before any dense matrix
exists: one mutation per site (so biallelic), minor allele frequency at least
`min_maf`, then thinned evenly to `max_snps_per_contig`. Only the kept sites
are turned into genotypes. REF is the ancestral allele, ALT the derived one.

Two kinds (table `KINDS`):
  populations   `samples_per_population` diploids from each of `populations`;
                label = population, sample IDs `CEU0001`, `YRI0001`, ...
  case_control  `num_samples` diploids from `population`; a liability-threshold
                phenotype from `num_causal` causal SNPs (normal effects, genetic
                liability scaled to variance `heritability`, environmental noise
                of variance 1 - heritability); the top `prevalence` fraction of
                liabilities are cases. Labels `case`/`control`, IDs `S00001`, ...
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Sequence

import ml_collections
import numpy as np

from gdiff import rng as rng_lib
from gdiff.data import writers
from gdiff.data.cohort import Variants
from gdiff.errors import InputError

VCF_FILE = 'cohort.vcf.gz'
LABELS_FILE = 'labels.tsv'


@dataclasses.dataclass(frozen=True)
class Contig:
  """The kept sites of one simulated contig, before phenotypes and writing."""

  name: str
  length: int
  pos: np.ndarray  # (S,) int64, 1-based, strictly increasing
  ref: np.ndarray  # (S,) str, one base
  alt: np.ndarray  # (S,) str, one base
  haplotypes_Sx2N: np.ndarray  # (S, 2N) int8 in {0, 1}; columns 2i, 2i+1 = individual i


@dataclasses.dataclass(frozen=True)
class SimulatedCohort:
  samples: np.ndarray  # (N,) str
  labels: np.ndarray  # (N,) str
  contigs: tuple[Contig, ...]
  info: dict  # what was simulated, for the manifest


# ------------------------------------------------------------------ tskit side


def _site_filter(ts, min_maf: float, max_snps: int) -> np.ndarray:
  """Ids of the sites to keep: single mutation, MAF >= min_maf, thinned evenly."""
  n = ts.num_samples
  keep = []
  for tree in ts.trees():
    for site in tree.sites():
      if len(site.mutations) != 1:
        continue
      mutation = site.mutations[0]
      if mutation.derived_state == site.ancestral_state:
        continue
      count = tree.num_samples(mutation.node)
      if min(count, n - count) >= min_maf * n and 0 < count < n:
        keep.append(site.id)
  keep = np.asarray(keep, np.int64)
  if max_snps and len(keep) > max_snps:
    keep = keep[np.unique(np.linspace(0, len(keep) - 1, max_snps).round().astype(np.int64))]
  return keep


def _kept_contig(ts, name: str, length: int, min_maf: float, max_snps: int) -> Contig:
  keep = _site_filter(ts, min_maf, max_snps)
  drop = np.setdiff1d(np.arange(ts.num_sites), keep)
  ts = ts.delete_sites(drop)  # the dense matrix below only ever has the kept sites
  sites = ts.tables.sites
  ancestral = np.array(
    [ts.site(i).ancestral_state for i in range(ts.num_sites)], dtype=object
  ).astype(str)
  derived = np.array(
    [ts.site(i).mutations[0].derived_state for i in range(ts.num_sites)], dtype=object
  ).astype(str)
  pos = sites.position.astype(np.int64) + 1
  # Columns 2i and 2i+1: the two sample nodes of individual i (diploids, in order).
  order = np.concatenate([ts.individual(i).nodes for i in range(ts.num_individuals)])
  haps = (
    ts.genotype_matrix(samples=order).astype(np.int8)
    if ts.num_sites
    else np.zeros((0, len(order)), np.int8)
  )
  return Contig(name, length, pos, ancestral, derived, haps)


def _individual_populations(ts) -> np.ndarray:
  names = [ts.population(p).metadata['name'] for p in range(ts.num_populations)]
  return np.array(
    [names[ts.node(ts.individual(i).nodes[0]).population] for i in range(ts.num_individuals)],
    dtype=object,
  ).astype(str)


def _simulate_contigs(
  sim: ml_collections.ConfigDict,
  sample_counts: dict[str, int],
  option: str = 'data.simulate.populations',
):
  import stdpopsim  # heavy import, only when simulating

  try:
    species = stdpopsim.get_species(sim.species)
  except ValueError as e:
    raise InputError(f'data.simulate.species: unknown species {sim.species!r}') from e
  try:
    model = species.get_demographic_model(sim.demography)
  except ValueError as e:
    known = ', '.join(m.id for m in species.demographic_models)
    raise InputError(
      f'data.simulate.demography: unknown model {sim.demography!r} for '
      f'{sim.species} (known: {known})'
    ) from e
  known_pops = [p.name for p in model.populations]
  bad = [p for p in sample_counts if p not in known_pops]
  if bad:
    raise InputError(
      f'{option}: {", ".join(bad)} not in {sim.demography} (known: {", ".join(known_pops)})'
    )
  engine = stdpopsim.get_engine('msprime')
  seeds = np.random.SeedSequence(sim.seed).generate_state(sim.num_contigs)
  contigs, populations = [], None
  for k in range(sim.num_contigs):
    contig = species.get_contig(
      length=sim.contig_length,
      mutation_rate=model.mutation_rate,
      recombination_rate=sim.recombination_rate,
    )
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', UserWarning)  # stdpopsim's generic-contig notes
      ts = engine.simulate(model, contig, dict(sample_counts), seed=int(seeds[k]) % (2**31 - 1) + 1)
    kept = _kept_contig(
      ts, str(k + 1), int(sim.contig_length), sim.min_maf, sim.max_snps_per_contig
    )
    logging.info('simulate: contig %s: %d sites, %d kept', kept.name, ts.num_sites, len(kept.pos))
    contigs.append(kept)
    if populations is None:
      populations = _individual_populations(ts)
  return tuple(contigs), populations


# ------------------------------------------------------------------ cohorts


def _ids(prefix: str, n: int) -> list[str]:
  width = max(4 if prefix != 'S' else 5, len(str(n)))
  return [f'{prefix}{i + 1:0{width}d}' for i in range(n)]


def _check_counts(name: str, values: Sequence[int], at_least: int = 1) -> None:
  if any(int(v) < at_least for v in values):
    raise InputError(f'data.simulate.{name}: every count must be >= {at_least}, got {values}')


def _populations(sim: ml_collections.ConfigDict) -> SimulatedCohort:
  pops, counts = tuple(sim.populations), tuple(sim.samples_per_population)
  if len(pops) != len(counts):
    raise InputError(
      f'data.simulate.samples_per_population: {len(counts)} counts for '
      f'{len(pops)} populations {pops}'
    )
  if len(set(pops)) != len(pops):
    raise InputError(f'data.simulate.populations: repeated population in {pops}')
  _check_counts('samples_per_population', counts)
  contigs, populations = _simulate_contigs(sim, dict(zip(pops, map(int, counts))))
  samples = np.empty(len(populations), dtype=object)
  for pop in pops:
    rows = np.flatnonzero(populations == pop)
    samples[rows] = _ids(pop, len(rows))
  info = {'kind': 'populations', 'samples_per_population': dict(zip(pops, map(int, counts)))}
  return SimulatedCohort(samples.astype(str), populations, contigs, info)


def liability_phenotype(
  dosage_SxN: np.ndarray,
  num_causal: int,
  heritability: float,
  prevalence: float,
  rng: np.random.Generator,
):
  """Liability-threshold cases from causal SNPs.

  Args:
    dosage_SxN: alt-allele counts of the candidate SNPs.
    num_causal: causal SNPs drawn without replacement (at most S).
    heritability: variance share of the genetic liability, in [0, 1].
    prevalence: fraction of cases (the top liabilities).
    rng: random generator.

  Returns:
    (is_case (N,) bool, causal (num_causal,) SNP indices, effects (num_causal,)).
  """
  n = dosage_SxN.shape[1]
  causal = np.sort(rng.choice(dosage_SxN.shape[0], size=num_causal, replace=False))
  effects = rng.normal(size=num_causal)
  genetic = effects @ dosage_SxN[causal].astype(np.float64)
  std = genetic.std()
  genetic = (genetic - genetic.mean()) / (std if std > 0 else 1.0) * np.sqrt(heritability)
  liability = genetic + rng.normal(scale=np.sqrt(1.0 - heritability), size=n)
  num_cases = int(round(prevalence * n))
  is_case = np.zeros(n, bool)
  is_case[np.argsort(-liability, kind='stable')[:num_cases]] = True
  return is_case, causal, effects


def _case_control(sim: ml_collections.ConfigDict) -> SimulatedCohort:
  n = int(sim.num_samples)
  if n < 2:
    raise InputError(f'data.simulate.num_samples: need at least 2, got {n}')
  if not 0.0 < sim.prevalence < 1.0:
    raise InputError(f'data.simulate.prevalence: must be in (0, 1), got {sim.prevalence}')
  if not 0.0 <= sim.heritability <= 1.0:
    raise InputError(f'data.simulate.heritability: must be in [0, 1], got {sim.heritability}')
  contigs, _ = _simulate_contigs(sim, {sim.population: n}, 'data.simulate.population')
  dosage_SxN = np.concatenate(
    [c.haplotypes_Sx2N[:, 0::2] + c.haplotypes_Sx2N[:, 1::2] for c in contigs]
  )
  if not 1 <= sim.num_causal <= dosage_SxN.shape[0]:
    raise InputError(
      f'data.simulate.num_causal: must be in [1, {dosage_SxN.shape[0]}] '
      f'(the simulated SNPs), got {sim.num_causal}'
    )
  rng = rng_lib.numpy_stream(sim.seed, 'simulate_phenotype')
  is_case, causal, effects = liability_phenotype(
    dosage_SxN, int(sim.num_causal), float(sim.heritability), float(sim.prevalence), rng
  )
  labels = np.where(is_case, 'case', 'control')
  offsets = np.cumsum([0] + [len(c.pos) for c in contigs])
  chrom_of = np.concatenate([[c.name] * len(c.pos) for c in contigs])
  pos_of = np.concatenate([c.pos for c in contigs])
  info = {
    'kind': 'case_control',
    'population': sim.population,
    'num_samples': n,
    'num_cases': int(is_case.sum()),
    'causal': [
      {'chrom': str(chrom_of[i]), 'pos': int(pos_of[i]), 'effect': float(b)}
      for i, b in zip(causal, effects)
    ],
    'contig_offsets': offsets.tolist(),
  }
  return SimulatedCohort(np.array(_ids('S', n)), labels, contigs, info)


KINDS = {'populations': _populations, 'case_control': _case_control}
# The `data.simulate` keys each kind ignores (a workdir's record ignores them too).
UNUSED_KEYS = {
  'populations': ('population', 'num_samples', 'prevalence', 'heritability', 'num_causal'),
  'case_control': ('populations', 'samples_per_population'),
}


def simulate(sim: ml_collections.ConfigDict) -> SimulatedCohort:
  """Simulates a cohort as configured in `data.simulate` (in memory)."""
  if sim.kind not in KINDS:
    raise InputError(f'data.simulate.kind: unknown {sim.kind!r} (known: {", ".join(KINDS)})')
  if int(sim.seed) < 0:
    raise InputError(f'data.simulate.seed: must be >= 0, got {sim.seed}')
  if int(sim.num_contigs) < 1 or int(sim.contig_length) < 1000:
    raise InputError('data.simulate.num_contigs / contig_length: need >= 1 contig of >= 1000 bp')
  return KINDS[sim.kind](sim)


# ------------------------------------------------------------------ writing


def contig_variants(contig: Contig) -> Variants:
  """The variant table of a contig; IDs are CHROM:POS:REF:ALT."""
  ids = [f'{contig.name}:{int(p)}:{r}:{a}' for p, r, a in zip(contig.pos, contig.ref, contig.alt)]
  return Variants(
    chrom=np.full(len(contig.pos), contig.name),
    pos=contig.pos,
    id=np.array(ids, dtype=str),
    ref=contig.ref,
    alt=contig.alt,
  )


def write_contigs(path: str, samples: Sequence[str], contigs: Sequence[Contig]) -> None:
  """Writes a bgzipped VCF 4.2 with phased GT for all contigs (atomically)."""
  with writers.VcfWriter(
    path, samples, [(c.name, c.length) for c in contigs], source='gdiff.data.simulate'
  ) as vcf:
    for contig in contigs:
      vcf.write_haplotypes(contig.haplotypes_Sx2N, contig_variants(contig))


def simulate_to_files(sim: ml_collections.ConfigDict, out_dir: str) -> tuple[str, str, dict]:
  """Simulates and writes `cohort.vcf.gz` and `labels.tsv` into `out_dir`.

  Args:
    sim: the `data.simulate` config section.
    out_dir: folder to write into (created if needed).

  Returns:
    (vcf path, labels path, info dict for the manifest).
  """
  os.makedirs(out_dir, exist_ok=True)
  cohort = simulate(sim)
  vcf = os.path.join(out_dir, VCF_FILE)
  labels = os.path.join(out_dir, LABELS_FILE)
  write_contigs(vcf, cohort.samples, cohort.contigs)
  writers.write_labels(labels, cohort.samples, cohort.labels)
  info = dict(
    cohort.info,
    num_snps=int(sum(len(c.pos) for c in cohort.contigs)),
    snps_per_contig={c.name: int(len(c.pos)) for c in cohort.contigs},
    config=sim.to_dict(),
  )
  logging.info('simulate: %d samples x %d SNPs -> %s', len(cohort.samples), info['num_snps'], vcf)
  return vcf, labels, info
