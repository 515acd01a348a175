"""What a workdir holds, and whether it was made with a compatible config.

Each stage writes `WORKDIR/stages/<stage>.json` when it finishes, holding the
config sections it depends on. A later run reuses a finished stage whose
sections are unchanged, and refuses (nothing deleted) a workdir whose finished
stages were made with different values: the user picks a new workdir or
removes the stage's folder deliberately.
"""

from __future__ import annotations

import json
import logging
import os

import ml_collections

from gdiff.data import simulate
from gdiff.errors import InputError

# Sections each stage's outputs depend on.
STAGE_SECTIONS = {
    'prepare': ('seed', 'data', 'embedding'),
    'train': ('seed', 'data', 'embedding', 'input', 'model', 'diffusion', 'train'),
    'sample': ('seed', 'data', 'embedding', 'input', 'model', 'diffusion', 'train', 'sample'),
    'evaluate': ('seed', 'data', 'embedding', 'input', 'model', 'diffusion', 'train', 'sample',
                 'evaluate'),
}
# Keys that may change between runs of a stage without invalidating its outputs:
# a longer `train.num_steps` resumes training; how often it logs or saves does
# not change what it computes. How many processes read ingest is not recorded.
# Nor are `data.simulate` keys the cohort does not use (`_without_ignored`).
IGNORED = {
    'prepare': ('data.ingest_workers', 'data.ingest_regions_per_worker'),
    'train': ('train.num_steps', 'train.log_every', 'train.eval_every',
              'train.checkpoint_every', 'train.keep_checkpoints', 'input.worker_count'),
}
# Keys added after workdirs were first written, with the value that reproduces what
# gdiff did before the key existed: a record without the key is read as holding it,
# so an old workdir stays usable when the new key keeps the old behaviour (and, as
# for `sample.decode_thresholds`, the stage re-runs when the new default differs).
ADDED = {
    'diffusion.prediction': 'eps',
    'train.recombine_segment_groups': 0.0,
    'train.recombine_prob': 1.0,
    'sample.decode_thresholds': 'train',
    'sample.calibration_people': 4096,
    'evaluate.holdout': 'test',
}
# Stages whose outputs a stage consumes.
UPSTREAM = {'prepare': (), 'train': ('prepare',), 'sample': ('prepare', 'train'),
            'evaluate': ('prepare', 'sample')}


def sections(config: ml_collections.ConfigDict, stage: str) -> dict:
  """The config values a stage's outputs depend on, as plain JSON."""
  d = config.to_dict()
  return _without_ignored(json.loads(json.dumps({k: d[k] for k in STAGE_SECTIONS[stage]},
                                                default=str)), stage)


def _without_ignored(recorded: dict, stage: str) -> dict:
  out = json.loads(json.dumps(recorded))
  for key, value in ADDED.items():
    section, leaf = key.split('.')
    if isinstance(out.get(section), dict):
      out[section].setdefault(leaf, value)
  for key in IGNORED.get(stage, ()):
    section, leaf = key.split('.')
    out.get(section, {}).pop(leaf, None)
  data = out.get('data')
  if isinstance(data, dict) and isinstance(data.get('simulate'), dict):
    if data.get('vcf') or data.get('plink'):  # a real cohort: nothing is simulated
      data.pop('simulate')
    else:
      for leaf in simulate.UNUSED_KEYS.get(data['simulate'].get('kind'), ()):
        data['simulate'].pop(leaf, None)
  return out


def _record_path(workdir: str, stage: str) -> str:
  return os.path.join(workdir, 'stages', f'{stage}.json')


def read_record(workdir: str, stage: str) -> dict | None:
  path = _record_path(workdir, stage)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _diff(old: dict, new: dict, prefix: str = '') -> list[str]:
  out = []
  for k in sorted(set(old) | set(new)):
    a, b = old.get(k), new.get(k)
    if isinstance(a, dict) and isinstance(b, dict):
      out += _diff(a, b, f'{prefix}{k}.')
    elif a != b:
      out.append(f'{prefix}{k} ({a!r} -> {b!r})')
  return out


def check(config, workdir: str, stage: str) -> bool:
  """Refuses incompatible upstream outputs; True when `stage` itself is done."""
  for up in UPSTREAM[stage] + (stage,):
    record = read_record(workdir, up)
    if record is None:
      if up != stage:
        raise InputError(f'{workdir}: stage {up!r} has not finished there; run '
                         f'--mode={up} first (or --mode=all)')
      continue
    changed = _diff(_without_ignored(record['sections'], up), sections(config, up))
    if changed and up != stage:
      raise InputError(
          f'{workdir}: made with a different config for stage {up!r}: '
          f'{", ".join(changed[:4])}{" ..." if len(changed) > 4 else ""}; '
          f'use a new --workdir (nothing was deleted)')
    if changed and up == stage and stage in ('prepare', 'train'):
      raise InputError(
          f'{workdir}: its {stage!r} outputs were made with a different config: '
          f'{", ".join(changed[:4])}{" ..." if len(changed) > 4 else ""}; '
          f'use a new --workdir (nothing was deleted)')
  own = read_record(workdir, stage)
  return own is not None and not _diff(_without_ignored(own['sections'], stage),
                                       sections(config, stage))


def mark_done(config, workdir: str, stage: str, **extra) -> None:
  os.makedirs(os.path.join(workdir, 'stages'), exist_ok=True)
  path = _record_path(workdir, stage)
  with open(path + '.tmp', 'w') as f:
    json.dump({'stage': stage, 'sections': sections(config, stage), **extra}, f, indent=1)
  os.replace(path + '.tmp', path)
  logging.info('stage %s done', stage)
