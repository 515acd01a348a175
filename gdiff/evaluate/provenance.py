"""Where a report's numbers come from: version, inputs, config, generator, cohort judged.

`provenance(config, workdir, synthetic_file)` is written into metrics.json and at the
foot of report.md / report.html, so a report read months later (or passed on) says
which run and which synthetic file it judged. The resolved config's hash is the one the
VCF header carries (`##gdiffConfigHash`, `workdir.config_hash`); the config itself is saved
next to the report as config.json by `report.write`.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os

import ml_collections

import gdiff
from gdiff import workdir as wd

HASH_CHUNK = 1 << 20


def config_json(config: ml_collections.ConfigDict) -> str:
  """The resolved config as sorted JSON (what config_sha256 hashes)."""
  return json.dumps(config.to_dict(), sort_keys=True, indent=1, default=str)


def file_sha256(path: str) -> str | None:
  if not os.path.isfile(path):
    return None
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(HASH_CHUNK), b''):
      digest.update(chunk)
  return digest.hexdigest()


def _inputs(data: ml_collections.ConfigDict) -> dict:
  """The real cohort's input files, or the simulation that made it."""
  files = {k: data[k] for k in ('vcf', 'plink', 'pgen', 'labels', 'split_file') if data.get(k)}
  if files:
    return files
  sim = data.simulate
  people = sim.get('num_samples') or sum(sim.get('samples_per_population') or ())
  return {
    'simulated': f'{sim.get("kind")}, {sim.get("species")} {sim.get("demography")}, '
    f'{people} people, seed {sim.get("seed")}'
  }


def _training(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """What the train stage's record says (the context chosen, ...) and the checkpoint used."""
  out = {'checkpoint': config.sample.checkpoint}
  if config.generator == 'diffusion':
    out['train_steps'] = int(config.train.num_steps)
  try:
    record = wd.read_record(workdir, 'train') or {}
  except Exception:  # noqa: BLE001 - provenance never stops a report
    record = {}
  out.update({k: v for k, v in record.items() if k not in ('stage', 'format', 'sections')})
  return out


def provenance(config: ml_collections.ConfigDict, workdir: str, synthetic_file: str) -> dict:
  """The provenance block of a report (see the module docstring)."""
  return {
    'gdiff_version': gdiff.__version__,
    'date_utc': datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M:%S'),
    'workdir': os.path.abspath(workdir),
    'inputs': _inputs(config.data),
    'generator': config.generator,
    'training': _training(config, workdir),
    'seed': int(config.seed),
    'sample_seed': int(config.sample.seed),
    'config_hash': wd.config_hash(config),  # = the VCF's ##gdiffConfigHash
    'synthetic_file': os.path.abspath(synthetic_file),
    'synthetic_sha256': file_sha256(synthetic_file),
  }


def lines(prov: dict) -> list[str]:
  """The provenance block as report lines ('key: value')."""
  out = []
  for key, value in prov.items():
    if isinstance(value, dict):
      value = ', '.join(f'{k}={v}' for k, v in value.items())
    out.append(f'{key}: {value}')
  return out
