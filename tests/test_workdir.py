"""Stage records: reuse when unchanged, refuse incompatible workdirs, delete nothing."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

from configs import als as als_config
from configs import kg1
from gdiff import workdir as wd
from gdiff.errors import InputError


class als:  # noqa: N801  (the ALS config with the diffusion generator: train.* keys matter)
  @staticmethod
  def get_config():
    c = als_config.get_config()
    c.generator = 'diffusion'
    return c


def test_fresh_stage_is_not_done(tmp_path):
  assert not wd.check(als.get_config(), str(tmp_path), 'prepare')


def test_done_stage_is_reused(tmp_path):
  config = als.get_config()
  wd.mark_done(config, str(tmp_path), 'prepare')
  assert wd.check(config, str(tmp_path), 'prepare')


def test_changed_upstream_config_is_refused_and_nothing_deleted(tmp_path):
  config = als.get_config()
  wd.mark_done(config, str(tmp_path), 'prepare')
  keep = tmp_path / 'data' / 'keep.txt'
  keep.parent.mkdir()
  keep.write_text('x')
  changed = als.get_config()
  changed.embedding.window_snps = 16
  with pytest.raises(InputError, match=r'embedding\.window_snps \(32 -> 16\)'):
    wd.check(changed, str(tmp_path), 'train')
  with pytest.raises(InputError, match='new --workdir'):
    wd.check(changed, str(tmp_path), 'prepare')
  assert keep.read_text() == 'x'


def test_simulation_keys_the_cohort_does_not_use_are_not_compared(tmp_path):
  config = kg1.get_config()  # simulates populations: the case/control keys are unused
  wd.mark_done(config, str(tmp_path), 'prepare')
  other = kg1.get_config()
  other.data.simulate.num_samples += 1
  other.data.simulate.prevalence = 0.5
  assert wd.check(other, str(tmp_path), 'prepare')
  other.data.simulate.samples_per_population = (10, 10, 10, 10)
  with pytest.raises(InputError, match=r'samples_per_population'):
    wd.check(other, str(tmp_path), 'prepare')


def test_simulation_keys_are_not_compared_for_a_real_cohort(tmp_path):
  config = als.get_config()
  config.data.vcf = 'cohort.vcf.gz'
  wd.mark_done(config, str(tmp_path), 'prepare')
  config.data.simulate.seed += 1
  assert wd.check(config, str(tmp_path), 'prepare')
  config.data.vcf = 'other.vcf.gz'
  with pytest.raises(InputError, match=r'data\.vcf'):
    wd.check(config, str(tmp_path), 'prepare')


def test_missing_upstream_stage_names_the_mode(tmp_path):
  with pytest.raises(InputError, match='--mode=prepare'):
    wd.check(als.get_config(), str(tmp_path), 'train')


def test_longer_training_resumes_instead_of_refusing(tmp_path):
  config = als.get_config()
  for stage in ('prepare', 'train'):
    wd.mark_done(config, str(tmp_path), stage)
  longer = als.get_config()
  longer.train.num_steps *= 2
  wd.check(longer, str(tmp_path), 'train')  # no error
  assert os.path.exists(tmp_path / 'stages' / 'train.json')


def test_resampling_with_new_settings_is_allowed(tmp_path):
  config = als.get_config()
  for stage in ('prepare', 'train', 'sample'):
    wd.mark_done(config, str(tmp_path), stage)
  other = als.get_config()
  other.sample.guidance = 1.0
  assert not wd.check(other, str(tmp_path), 'sample')  # redo, no error


def test_changed_training_settings_are_refused_but_logging_cadence_is_not(tmp_path):
  config = als.get_config()
  for stage in ('prepare', 'train'):
    wd.mark_done(config, str(tmp_path), stage)
  cadence = als.get_config()
  cadence.train.log_every, cadence.train.checkpoint_every = 7, 11
  assert wd.check(cadence, str(tmp_path), 'train')
  changed = als.get_config()
  changed.train.learning_rate *= 2
  with pytest.raises(InputError, match=r'train\.learning_rate'):
    wd.check(changed, str(tmp_path), 'train')


def test_a_record_from_before_a_key_existed_reads_as_its_old_behaviour(tmp_path):
  """model.cnn_resample is newer than some workdirs: their networks resampled in ResBlocks."""
  config = als.get_config()
  config.model.cnn_resample = 'resblock'
  for stage in ('prepare', 'train'):
    wd.mark_done(config, str(tmp_path), stage)
  path = wd.Layout(str(tmp_path)).record('train')
  with open(path) as f:
    record = json.load(f)
  del record['sections']['model']['cnn_resample']
  with open(path, 'w') as f:
    json.dump(record, f)
  assert wd.check(config, str(tmp_path), 'train')
  config.model.cnn_resample = 'pool'
  with pytest.raises(InputError, match=r"model\.cnn_resample \('resblock' -> 'pool'\)"):
    wd.check(config, str(tmp_path), 'train')


def test_a_workdir_of_an_older_format_is_refused_in_one_line(tmp_path):
  config = als.get_config()
  wd.mark_done(config, str(tmp_path), 'prepare')
  path = tmp_path / 'stages' / 'prepare.json'
  record = json.loads(path.read_text())
  del record['format']  # as every gdiff before the format number wrote it
  path.write_text(json.dumps(record))
  with pytest.raises(
    InputError,
    match=r'made by an older gdiff \(format 1\); use a new '
    r'--workdir',
  ):
    wd.check(config, str(tmp_path), 'prepare')
  with pytest.raises(InputError, match=r'format 1'):
    wd.open_workdir(str(tmp_path), ('train',))


def test_damaged_or_foreign_records_are_refused(tmp_path):
  (tmp_path / 'stages').mkdir()
  path = tmp_path / 'stages' / 'train.json'
  path.write_text('{"stage": "train", "sections": ')
  with pytest.raises(InputError, match=r'train\.json: damaged stage record \(invalid JSON'):
    wd.open_workdir(str(tmp_path), ('evaluate',))
  path.write_text('[1, 2]')
  with pytest.raises(InputError, match=r'train\.json: not a gdiff stage record'):
    wd.open_workdir(str(tmp_path), ('evaluate',))
  with pytest.raises(InputError, match='not a gdiff stage record'):  # never written over
    wd.mark_done(als.get_config(), str(tmp_path), 'train')
  assert path.read_text() == '[1, 2]'


def _tree(root):
  return {
    str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
    for p in sorted(root.rglob('*'))
  }


def test_replacing_writes_aside_then_swaps_and_never_replaces_a_foreign_folder(tmp_path):
  target = tmp_path / 'embedding'
  target.mkdir()
  (target / 'mine.txt').write_text('user data')
  before = _tree(tmp_path)
  with pytest.raises(
    InputError,
    match=r'embedding: a folder that gdiff did not write is in '
    r'the way',
  ):
    with wd.replacing(str(target)):
      raise AssertionError('not reached')
  assert _tree(tmp_path) == before
  (tmp_path / 'samples').write_text('a file')
  with pytest.raises(InputError, match='a file that gdiff did not write'):
    wd.check_owned(str(tmp_path / 'samples'))

  other = tmp_path / 'report'
  with wd.replacing(str(other)) as tmp:
    (pathlib.Path(tmp) / 'a.txt').write_text('1')
    assert not other.exists()  # nothing in place before the block completes
  assert (other / 'a.txt').read_text() == '1'
  with pytest.raises(RuntimeError):
    with wd.replacing(str(other)) as tmp:
      (pathlib.Path(tmp) / 'a.txt').write_text('2')
      raise RuntimeError('failed half way')
  assert (other / 'a.txt').read_text() == '1'  # the old output stays
  with wd.replacing(str(other)) as tmp:  # gdiff's own folder: replaced
    (pathlib.Path(tmp) / 'b.txt').write_text('2')
  assert sorted(os.listdir(other)) == [wd.MARKER, 'b.txt']
  assert sorted(p for p in os.listdir(tmp_path) if p.startswith('.')) == []


def test_a_symlinked_gdiff_folder_is_replaced_as_a_link_and_its_target_kept(tmp_path):
  shared = tmp_path / 'shared'
  with wd.replacing(str(shared)) as tmp:
    (pathlib.Path(tmp) / 'a.txt').write_text('shared')
  (tmp_path / 'w').mkdir()
  os.symlink(shared, tmp_path / 'w' / 'report')
  with wd.replacing(str(tmp_path / 'w' / 'report')) as tmp:
    (pathlib.Path(tmp) / 'b.txt').write_text('new')
  assert not os.path.islink(tmp_path / 'w' / 'report')
  assert (tmp_path / 'w' / 'report' / 'b.txt').read_text() == 'new'
  assert (shared / 'a.txt').read_text() == 'shared'


def test_forget_removes_only_gdiffs_record(tmp_path):
  wd.mark_done(als.get_config(), str(tmp_path), 'sample')
  wd.forget(str(tmp_path), 'sample')
  assert wd.read_record(str(tmp_path), 'sample') is None
  wd.forget(str(tmp_path), 'sample')  # nothing to forget


def test_temporaries_of_a_killed_run_are_removed_and_only_those(tmp_path):
  dead = subprocess.Popen([sys.executable, '-c', 'pass'])
  dead.wait()
  stale = tmp_path / '.report.gdiff-tmp-abc'
  stale.mkdir()
  (stale / wd.MARKER).write_text(
    json.dumps(
      {'folder': 'report', 'format': wd.FORMAT, 'host': socket.gethostname(), 'pid': dead.pid}
    )
  )
  alive = tmp_path / '.report.gdiff-tmp-def'
  alive.mkdir()
  (alive / wd.MARKER).write_text(
    json.dumps(
      {'folder': 'report', 'format': wd.FORMAT, 'host': socket.gethostname(), 'pid': os.getpid()}
    )
  )
  lookalike = tmp_path / '.report.gdiff-tmp-ghi'  # no marker: not gdiff's
  lookalike.mkdir()
  with wd.replacing(str(tmp_path / 'report')):
    pass
  assert not stale.exists() and alive.exists() and lookalike.exists()


def test_claim_makes_or_accepts_gdiff_folders_only(tmp_path):
  wd.claim(str(tmp_path / 'checkpoints'))
  wd.claim(str(tmp_path / 'checkpoints'))  # already ours
  (tmp_path / 'logs').mkdir()
  with pytest.raises(InputError, match='logs: a folder that gdiff did not write'):
    wd.claim(str(tmp_path / 'logs'))
  assert os.listdir(tmp_path / 'logs') == []


def test_changed_input_files_are_refused(tmp_path):
  labels = tmp_path / 'pheno.tsv'
  labels.write_text('sample\tlabel\na\tx\n')
  config = als.get_config()
  config.data.vcf, config.data.labels = str(tmp_path / 'c.vcf'), str(labels)
  wd.mark_done(
    config, str(tmp_path / 'w'), 'prepare', inputs=wd.fingerprint({'data.labels': str(labels)})
  )
  assert wd.check(config, str(tmp_path / 'w'), 'prepare')
  os.utime(labels, ns=(0, 0))  # same size, another time: a fixed file copied in place
  with pytest.raises(
    InputError,
    match=r'input .*pheno\.tsv \(data\.labels\) changed since '
    r'the workdir .* was made; use a new --workdir',
  ):
    wd.check(config, str(tmp_path / 'w'), 'train')


def test_layout_names_every_folder_once():
  layout = wd.Layout('W')
  assert [
    layout.data,
    layout.embedding,
    layout.checkpoints,
    layout.logs,
    layout.samples,
    layout.report,
    layout.stages,
  ] == [
    os.path.join('W', n)
    for n in ('data', 'embedding', 'checkpoints', 'logs', 'samples', 'report', 'stages')
  ]
  assert layout.codec == os.path.join('W', 'embedding', 'codec.npz')
  assert layout.record('train') == os.path.join('W', 'stages', 'train.json')
