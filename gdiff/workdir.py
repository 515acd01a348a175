"""The workdir: where each stage's outputs live, which folders gdiff owns, what can be reused.

Layout (`Layout`, the one place that names the workdir's folders):
  data/         the ingested cohort (gdiff.data.cohort)                 prepare
  embedding/    the fitted codec and the embedded splits                 prepare
  checkpoints/  orbax checkpoints (gdiff.checkpoint)                     train
  logs/         TensorBoard events, metrics.jsonl                        train
  samples/      the synthetic cohort (sample.out='')                     sample
  samples/NAME/ the cohort sample.out=NAME, its report in report/        sample, evaluate
  report/       metrics.json, report.html, report.md, figures            evaluate
  stages/       <stage>.json when a stage finishes (sample.NAME.json, evaluate.NAME.json)

Ownership. gdiff never deletes or overwrites what it did not write. Every folder
above except stages/ holds a marker file (`MARKER`) naming it and the workdir
format. A stage writes its folder with `replacing`: everything goes to a fresh
hidden temporary sibling (`tempfile.mkdtemp`, so never a name that exists),
which is renamed into place when complete; an existing folder is replaced only
when its marker says gdiff wrote it, otherwise the run stops with one line and
deletes nothing. Folders filled in place (checkpoints/, logs/) are created with
their marker by `claim`, under the same rule. A temporary folder left by a
killed run is removed by the next run that writes the same folder (`remove_stale`).

Stage records. Each stage writes `stages/<stage>.json` when it finishes: the
workdir format, the config sections its outputs depend on, the whole resolved
config and its hash (`config_hash`; `gdiff.load` rebuilds a run from it) and, for
prepare, the size and modification time of every input file. A later run reuses a
finished stage whose sections are unchanged, and refuses (nothing deleted) a
workdir whose finished stages were made with different values or from input
files changed since: the user picks a new workdir. A stage that is redone
(new sample or evaluate settings) loses its record first (`forget`), so a run
killed half way never leaves a record for outputs that are gone.

Cohorts. `sample.out=NAME` names a synthetic cohort: W/samples/NAME/ (`Layout.cohort`),
with its own sample and evaluate records, so earlier cohorts stay; the default cohort's
files are replaced in W/samples/ one by one (`replacing_files`), leaving the named ones
alone. A cohort's report names it (cohort.json); a named cohort's report lives inside the
cohort's folder and goes with it when the cohort is re-sampled, and re-sampling the
default cohort marks W/report/ stale (`mark_stale`) until it is evaluated again.

Format. `FORMAT` numbers the workdir layout and record contents; a workdir of
another format (format 1: every gdiff before the number existed; format 2:
cohort shards without `hap0` and manifests without `phased`) is refused in one
line, so no stage ever reads outputs it does not understand.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile

import ml_collections

from gdiff.data import simulate
from gdiff.errors import InputError

FORMAT = 3
MARKER = '.gdiff-folder.json'
_TMP = '.gdiff-tmp-'  # infix of temporary folders: .<name>.gdiff-tmp-XXXXXXXX
_OLD = '.gdiff-old-'  # infix of a replaced folder on its way out

DATA = 'data'
EMBEDDING = 'embedding'
CHECKPOINTS = 'checkpoints'
LOGS = 'logs'
SAMPLES = 'samples'
REPORT = 'report'
STAGES = 'stages'
# Files other stages read from embedding/ and samples/.
CODEC_FILE = 'codec.npz'
MASK_FILE = 'mask.npy'
EMBEDDING_MANIFEST_FILE = 'manifest.json'
SYNTHETIC_PREFIX = 'synthetic'
COHORT_FILE = 'cohort.json'  # in a report folder: the cohort it judged
STALE_FILE = 'STALE.txt'  # in a report folder whose cohort was re-sampled since
COHORT_STAGES = ('sample', 'evaluate')  # one record per cohort (`sample.out`)


@dataclasses.dataclass(frozen=True)
class Layout:
  """Paths of a workdir's folders and of the files stages hand to each other."""

  root: str

  def _join(self, *parts: str) -> str:
    return os.path.join(self.root, *parts)

  @property
  def data(self) -> str:
    return self._join(DATA)

  @property
  def embedding(self) -> str:
    return self._join(EMBEDDING)

  @property
  def checkpoints(self) -> str:
    return self._join(CHECKPOINTS)

  @property
  def logs(self) -> str:
    return self._join(LOGS)

  @property
  def samples(self) -> str:
    return self._join(SAMPLES)

  @property
  def report(self) -> str:
    return self._join(REPORT)

  @property
  def stages(self) -> str:
    return self._join(STAGES)

  @property
  def codec(self) -> str:
    return self._join(EMBEDDING, CODEC_FILE)

  @property
  def mask(self) -> str:
    return self._join(EMBEDDING, MASK_FILE)

  @property
  def embedding_manifest(self) -> str:
    return self._join(EMBEDDING, EMBEDDING_MANIFEST_FILE)

  @property
  def synthetic_h5(self) -> str:
    return self._join(SAMPLES, SYNTHETIC_PREFIX + '.h5')

  def cohort(self, name: str = '') -> str:
    """The folder of synthetic cohort `name` (`sample.out`; '' the default, W/samples)."""
    return self._join(SAMPLES, name) if name else self.samples

  def cohort_report(self, name: str = '') -> str:
    """The report folder of cohort `name`: W/report, or W/samples/NAME/report."""
    return self._join(SAMPLES, name, REPORT) if name else self.report

  def record(self, stage: str, cohort: str = '') -> str:
    return self._join(STAGES, f'{stage}.{cohort}.json' if cohort else f'{stage}.json')


def cohort_of(config: ml_collections.ConfigDict, stage: str) -> str:
  """The cohort a stage's record is kept for: `sample.out` for sample and evaluate."""
  return str(config.sample.get('out', '') or '') if stage in COHORT_STAGES else ''


# Folders each stage writes (attributes of `Layout`).
STAGE_FOLDERS = {
  'prepare': (DATA, EMBEDDING),
  'train': (CHECKPOINTS, LOGS),
  'sample': (SAMPLES,),
  'evaluate': (REPORT,),
}
# Sections each stage's outputs depend on.
_TRAINED = ('seed', 'data', 'embedding', 'generator', 'ar', 'input', 'model', 'diffusion', 'train')
STAGE_SECTIONS = {
  'prepare': ('seed', 'data', 'embedding'),
  'train': _TRAINED,
  'sample': _TRAINED + ('sample',),
  'evaluate': _TRAINED + ('sample', 'evaluate'),
}
# Sections only one generator reads (`config.generator`): a record leaves out the others'.
GENERATOR_SECTIONS = {'diffusion': ('input', 'model', 'diffusion', 'train'), 'ar': ('ar',)}
# Keys that may change between runs of a stage without invalidating its outputs:
# a longer `train.num_steps` resumes training; how often it logs or saves does
# not change what it computes. How many processes read ingest is not recorded.
# Nor are `data.simulate` keys the cohort does not use (`_without_ignored`).
IGNORED = {
  'prepare': ('data.ingest_workers', 'data.ingest_regions_per_worker'),
  'train': (
    'train.num_steps',
    'train.log_every',
    'train.eval_every',
    'train.checkpoint_every',
    'train.keep_checkpoints',
    'input.worker_count',
  ),
}
# Keys added to the config after workdirs were made: a record without one was made with
# the value here (what the code did before the key existed).
ADDED_LATER = {'model.cnn_resample': 'resblock'}
# Stages whose outputs a stage consumes.
UPSTREAM = {
  'prepare': (),
  'train': ('prepare',),
  'sample': ('prepare', 'train'),
  'evaluate': ('prepare', 'sample'),
}


# ------------------------------------------------------------------ ownership


def _format_error(where: str, found) -> InputError:
  age = 'an older' if isinstance(found, int) and found < FORMAT else 'another'
  return InputError(
    f'{where}: made by {age} gdiff (format {found}); use a new --workdir (nothing was deleted)'
  )


def _read_marker(folder: str) -> dict | None:
  try:
    with open(os.path.join(folder, MARKER)) as f:
      marker = json.load(f)
  except (OSError, ValueError):
    return None
  return marker if isinstance(marker, dict) and 'format' in marker else None


def _write_marker(folder: str, name: str, **extra) -> None:
  with open(os.path.join(folder, MARKER), 'w') as f:
    json.dump({'folder': name, 'format': FORMAT, **extra}, f)


def check_owned(path: str) -> None:
  """Refuses (InputError, one line) an existing `path` that gdiff did not write.

  Absent is fine; a folder with gdiff's marker of this format is fine.
  """
  if not os.path.lexists(path):
    return
  marker = _read_marker(path) if os.path.isdir(path) else None
  if marker is None:
    kind = 'folder' if os.path.isdir(path) else 'file'
    raise InputError(
      f'{path}: a {kind} that gdiff did not write is in the way; move it away '
      f'or use a new --workdir (nothing was deleted)'
    )
  if marker['format'] != FORMAT:
    raise _format_error(path, marker['format'])


def claim(path: str) -> None:
  """Makes `path` a gdiff folder (created with its marker), or checks that it is one."""
  check_owned(path)
  if not os.path.exists(path):
    os.makedirs(path)
    _write_marker(path, os.path.basename(path))


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def remove_stale(path: str) -> None:
  """Removes the temporaries of `path` that a killed gdiff left.

  Only hidden `.NAME.gdiff-tmp-*` / `.NAME.gdiff-old-*` folders with gdiff's marker
  are touched: while being written it names a process of this host that is gone,
  once complete it names none.
  """
  parent, name = os.path.split(os.path.abspath(path))
  if not os.path.isdir(parent):
    return
  for entry in os.listdir(parent):
    if not entry.startswith(f'.{name}{_TMP}') and not entry.startswith(f'.{name}{_OLD}'):
      continue
    folder = os.path.join(parent, entry)
    marker = _read_marker(folder)
    if marker is None or marker.get('folder') != name:
      continue  # not gdiff's
    pid = marker.get('pid')  # none: complete, killed before its rename
    if pid is None or (marker.get('host') == socket.gethostname() and not _pid_alive(pid)):
      logging.info('removing %s, left by an interrupted gdiff run', folder)
      shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def replacing(path: str):
  """Yields a fresh temporary folder that replaces `path` when the block completes.

  `path` must be absent or a gdiff folder (`check_owned`). On an exception the
  temporary folder is removed and `path` is left as it was.
  """
  check_owned(path)
  path = os.path.normpath(path)
  name = os.path.basename(path)
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  remove_stale(path)
  tmp = tempfile.mkdtemp(prefix=f'.{name}{_TMP}', dir=parent)
  mine = {'host': socket.gethostname(), 'pid': os.getpid()}  # lets `remove_stale` find it
  try:
    _write_marker(tmp, name, **mine)
    yield tmp
    _write_marker(tmp, name)  # the same bytes for the same outputs
    check_owned(path)  # nothing appeared meanwhile
    if os.path.lexists(path):
      old = tempfile.mkdtemp(prefix=f'.{name}{_OLD}', dir=parent)
      _write_marker(old, name, **mine)
      os.rename(path, os.path.join(old, name))  # a symlink moves as itself
      os.rename(tmp, path)
      shutil.rmtree(old)  # never follows a symlink inside
    else:
      os.rename(tmp, path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


@contextlib.contextmanager
def replacing_files(path: str):
  """Yields a fresh temporary folder whose files replace those of `path`, one by one.

  For a folder that also holds folders of its own that must stay (W/samples/ and the
  named cohorts): `path`'s files (not its folders) that the new set lacks are removed,
  the new ones renamed in. Not atomic as a whole: the stage's record is forgotten
  before and written after, so a killed run leaves no record for a mixed folder.
  """
  claim(path)
  path = os.path.normpath(path)
  name = os.path.basename(path)
  parent = os.path.dirname(os.path.abspath(path))
  remove_stale(path)
  tmp = tempfile.mkdtemp(prefix=f'.{name}{_TMP}', dir=parent)
  try:
    _write_marker(tmp, name, host=socket.gethostname(), pid=os.getpid())
    yield tmp
    new = set(os.listdir(tmp)) - {MARKER}
    for entry in os.listdir(path):
      old = os.path.join(path, entry)
      if entry != MARKER and entry not in new and os.path.isfile(old):
        os.remove(old)
    for entry in sorted(new):
      os.replace(os.path.join(tmp, entry), os.path.join(path, entry))
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def write_cohort_note(report_dir: str, cohort: str, samples_dir: str) -> None:
  """Names in a report folder the cohort it judged (COHORT_FILE)."""
  manifest = os.path.join(samples_dir, 'manifest.json')
  with open(manifest, 'rb') as f:
    digest = hashlib.sha256(f.read()).hexdigest()
  with open(os.path.join(report_dir, COHORT_FILE), 'w') as f:
    json.dump({'cohort': cohort, 'samples': samples_dir, 'manifest_sha256': digest}, f, indent=1)


def mark_stale(report_dir: str, cohort: str) -> None:
  """Marks a gdiff report folder stale: its cohort is being re-sampled."""
  if not os.path.isdir(report_dir) or _read_marker(report_dir) is None:
    return
  with open(os.path.join(report_dir, STALE_FILE), 'w') as f:
    f.write(
      f'STALE: the synthetic cohort this report judged ({cohort or "default"}) was '
      're-sampled after it was written; run --mode=evaluate again.\n'
    )


# ------------------------------------------------------------------ inputs


def fingerprint(files: dict[str, str]) -> dict:
  """{option: {'path', 'size', 'mtime_ns'}} of the input files named by options."""
  out = {}
  for option, path in files.items():
    try:
      st = os.stat(path)
    except OSError:
      continue  # a missing input is reported where it is read
    out[option] = {'path': os.path.abspath(path), 'size': st.st_size, 'mtime_ns': st.st_mtime_ns}
  return out


def check_inputs(recorded: dict, workdir: str) -> None:
  """Refuses when an input file recorded by `fingerprint` changed since (size or mtime).

  A file that is gone is not an error here: the finished outputs no longer need it.
  """
  for option, old in sorted(recorded.items()):
    try:
      st = os.stat(old['path'])
    except OSError:
      continue
    if (st.st_size, st.st_mtime_ns) != (old['size'], old['mtime_ns']):
      raise InputError(
        f'input {old["path"]} ({option}) changed since the workdir {workdir} '
        f'was made; use a new --workdir (nothing was deleted)'
      )


# ------------------------------------------------------------------ stage records


def sections(config: ml_collections.ConfigDict, stage: str) -> dict:
  """The config values a stage's outputs depend on, as plain JSON."""
  d = config.to_dict()
  picked = {k: d[k] for k in STAGE_SECTIONS[stage] if k in d}
  return _without_ignored(json.loads(json.dumps(picked, default=str)), stage)


def resolved_config(config: ml_collections.ConfigDict) -> dict:
  """The whole config as plain JSON (tuples as lists): what a stage record keeps."""
  return json.loads(json.dumps(config.to_dict(), default=str))


def config_hash(config: ml_collections.ConfigDict) -> str:
  """First 16 hex digits of the sha256 of the resolved config's JSON (sorted keys)."""
  text = json.dumps(resolved_config(config), sort_keys=True, separators=(',', ':'))
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def _without_ignored(recorded: dict, stage: str) -> dict:
  out = json.loads(json.dumps(recorded))
  generator = out.get('generator')
  for name, unused in GENERATOR_SECTIONS.items():
    if generator is not None and name != generator:
      for section in unused:
        out.pop(section, None)
  for key, value in ADDED_LATER.items():
    section, leaf = key.split('.')
    if isinstance(out.get(section), dict):
      out[section].setdefault(leaf, value)
  for key in IGNORED.get(stage, ()):
    section, leaf = key.split('.')
    out.get(section, {}).pop(leaf, None)
  data = out.get('data')
  if isinstance(data, dict) and isinstance(data.get('simulate'), dict):
    if data.get('vcf') or data.get('plink') or data.get('pgen'):  # a real cohort
      data.pop('simulate')
    else:
      for leaf in simulate.UNUSED_KEYS.get(data['simulate'].get('kind'), ()):
        data['simulate'].pop(leaf, None)
  return out


def read_record(workdir: str, stage: str, cohort: str = '') -> dict | None:
  """A stage's record (of `cohort`, for sample and evaluate); None when the stage has not
  finished. Refuses damaged or foreign ones."""
  path = Layout(workdir).record(stage, cohort)
  if not os.path.lexists(path):
    return None
  try:
    with open(path) as f:
      record = json.load(f)
  except UnicodeDecodeError as e:
    raise InputError(
      f'{path}: not a gdiff stage record ({e.reason}); move it away or use a new --workdir'
    ) from e
  except ValueError as e:
    raise InputError(
      f'{path}: damaged stage record (invalid JSON: {e}); move it away or use a new --workdir'
    ) from e
  except OSError as e:
    raise InputError(f'{path}: cannot read the stage record ({e.strerror})') from e
  if not isinstance(record, dict) or record.get('stage') != stage:
    raise InputError(f'{path}: not a gdiff stage record; move it away or use a new --workdir')
  found = record.get('format', 1)
  if found != FORMAT:
    raise _format_error(workdir, found)
  if not isinstance(record.get('sections'), dict):
    raise InputError(
      f'{path}: damaged stage record (no config sections); move it away or use a new --workdir'
    )
  return record


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
    cohort = cohort_of(config, up)
    record = read_record(workdir, up, cohort)
    if record is None:
      if up != stage:
        what = f'stage {up!r}' + (f' of cohort {cohort!r} (sample.out)' if cohort else '')
        raise InputError(
          f'{workdir}: {what} has not finished there; run --mode={up} first (or --mode=all)'
        )
      continue
    check_inputs(record.get('inputs', {}), workdir)
    changed = _diff(_without_ignored(record['sections'], up), sections(config, up))
    if changed and up != stage:
      raise InputError(
        f'{workdir}: made with a different config for stage {up!r}: '
        f'{", ".join(changed[:4])}{" ..." if len(changed) > 4 else ""}; '
        f'use a new --workdir (nothing was deleted)'
      )
    if changed and up == stage and stage in ('prepare', 'train'):
      raise InputError(
        f'{workdir}: its {stage!r} outputs were made with a different config: '
        f'{", ".join(changed[:4])}{" ..." if len(changed) > 4 else ""}; '
        f'use a new --workdir (nothing was deleted)'
      )
  own = read_record(workdir, stage, cohort_of(config, stage))
  return own is not None and not _diff(
    _without_ignored(own['sections'], stage), sections(config, stage)
  )


def forget(workdir: str, stage: str, cohort: str = '') -> None:
  """Removes a stage's record before the stage is redone (a kill then leaves no stale one)."""
  if read_record(workdir, stage, cohort) is not None:  # refuses anything but our own record
    os.remove(Layout(workdir).record(stage, cohort))


def mark_done(config, workdir: str, stage: str, **extra) -> None:
  """Writes the stage's record (atomically; never over a file that is not a gdiff record)."""
  layout = Layout(workdir)
  os.makedirs(layout.stages, exist_ok=True)
  cohort = cohort_of(config, stage)
  path = layout.record(stage, cohort)
  if os.path.lexists(path):
    read_record(workdir, stage, cohort)  # refuses anything but our own record
  if cohort:
    extra = {'cohort': cohort, **extra}
  fd, tmp = tempfile.mkstemp(prefix=f'.{stage}.json{_TMP}', dir=layout.stages)
  try:
    with os.fdopen(fd, 'w') as f:
      json.dump(
        {
          'stage': stage,
          'format': FORMAT,
          'sections': sections(config, stage),
          'config': resolved_config(config),  # what `gdiff.load` rebuilds the run from
          'config_hash': config_hash(config),
          **extra,
        },
        f,
        indent=1,
      )
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise
  logging.info('stage %s done', stage)


# ------------------------------------------------------------------ before any stage


def open_workdir(workdir: str, stages) -> Layout:
  """Checks a workdir before any stage runs; creates it when missing.

  Refuses, in one line each: a path that is not a folder, a folder gdiff cannot
  write, damaged stage records, a workdir of another format, and folders that
  `stages` would write but gdiff did not make.

  Args:
    workdir: --workdir.
    stages: the stages that will run.
  Returns:
    The workdir's Layout.
  """
  layout = Layout(workdir)
  if os.path.lexists(workdir) and not os.path.isdir(workdir):
    raise InputError(f'--workdir={workdir}: is a file, not a folder')
  try:
    os.makedirs(workdir, exist_ok=True)
    os.rmdir(tempfile.mkdtemp(prefix='.gdiff-probe-', dir=workdir))
  except OSError as e:
    what = e.strerror or str(e)
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
      what += ': gdiff needs to write there'
    raise InputError(f'--workdir={workdir}: cannot write there ({what})') from e
  if os.path.lexists(layout.stages) and not os.path.isdir(layout.stages):
    raise InputError(
      f'{layout.stages}: a file that gdiff did not write is in the way; move '
      f'it away or use a new --workdir (nothing was deleted)'
    )
  for stage in STAGE_SECTIONS:  # every record: format and damage, whichever stages run
    read_record(workdir, stage)
  for stage in stages:
    for folder in STAGE_FOLDERS[stage]:
      check_owned(os.path.join(workdir, folder))
  return layout
