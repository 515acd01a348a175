"""The command line: the `gdiff` entry point, config mistakes, quiet success, named cohorts.

A tiny ar run goes through the console entry point that setup.cfg installs (called
in a fresh interpreter, not re-installed): it must succeed with nothing on stderr.
Named cohorts (`sample.out`) are then sampled and evaluated in that workdir.
"""

import configparser
import json
import os
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest

from gdiff import main
from gdiff import workdir as wd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
  f'--config={os.path.join(ROOT, "configs", "kg1.py")}',
  '--config.data.simulate.samples_per_population=(8, 8, 8, 8)',
  '--config.data.simulate.num_contigs=1',
  '--config.data.simulate.max_snps_per_contig=32',
  '--config.ar.context_snps=(2,)',
  '--config.ar.max_iter=10',
  '--config.ar.block_snps=16',
  '--config.evaluate.classifiers=("logreg",)',
  '--config.evaluate.seeds=1',
  '--config.evaluate.classifier_steps=5',
  '--config.evaluate.baselines=("independent",)',
  '--config.evaluate.augmentation_classifier=',
  '--config.evaluate.mosaic_segment_snps=(4,)',
]


def _entry_point() -> str:
  """setup.cfg's `gdiff = module:function`."""
  cfg = configparser.ConfigParser()
  cfg.read(os.path.join(ROOT, 'setup.cfg'))
  lines = cfg['options.entry_points']['console_scripts'].strip().splitlines()
  scripts = dict(line.replace(' ', '').split('=') for line in lines)
  return scripts['gdiff']


def _console(args, cwd):
  module, function = _entry_point().split(':')
  code = f'import sys; sys.argv[0] = "gdiff"; from {module} import {function}; {function}()'
  return subprocess.run(
    [sys.executable, '-c', code, *args],
    cwd=cwd,
    capture_output=True,
    text=True,
    timeout=600,
    env=dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=ROOT),
  )


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  w = str(tmp_path_factory.mktemp('run') / 'w')
  proc = _console([*TINY, f'--workdir={w}', '--mode=all'], cwd=str(tmp_path_factory.getbasetemp()))
  return w, proc


def test_the_console_command_runs_quietly(tiny_run):
  w, proc = tiny_run
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stderr == ''  # no library notices, warnings or progress bars
  assert 'I stage evaluate' in proc.stdout and '\r' not in proc.stdout
  assert os.path.exists(os.path.join(w, 'report', 'metrics.json'))
  with open(os.path.join(w, 'samples', 'manifest.json')) as f:
    manifest = json.load(f)
  assert manifest['argv'][0] == 'gdiff' and f'--workdir={w}' in manifest['argv']
  assert manifest['config_hash'] == wd.read_record(w, 'sample')['config_hash']


def test_a_mistake_through_the_console_is_one_line(tmp_path):
  proc = _console([*TINY, f'--workdir={tmp_path}/w', '--config.sample.num=-1'], cwd=tmp_path)
  assert proc.returncode == 2 and proc.stderr.splitlines() == [
    'gdiff: error: config sample.num=-1: must be >= 0'
  ]


@pytest.mark.parametrize(
  'flag, pattern',
  [
    ('--config.sample.nmu=3', r'--config\.sample\.nmu: no such config key .*sample\.num'),
    ('--config.train.num_steps=abc', r'--config\.train\.num_steps=abc'),
    ('--config.sample.seed=x1', r'--config\.sample\.seed=x1'),
    ('--config.sample.num=-3', r'config sample\.num=-3: must be >= 0'),
    ('--config.seed=-1', r'config seed=-1: must be'),
    ('--config.sample.class_counts=CEU:-2', r'sample\.class_counts=.CEU:-2.: expected LABEL:COUNT'),
    ('--config.sample.out=../x', r"sample\.out='\.\./x': a cohort name"),
    ('--config.generator=gan', r"generator='gan' is unknown"),
    ('--config.evaluate.classifiers=("svm",)', r"evaluate\.classifiers: unknown 'svm'"),
    ('--config.train.num_steps=-5', r'train\.num_steps=-5: must be >= 1'),
  ],
)
def test_config_mistakes_are_one_line_before_any_stage(tmp_path, capfd, flag, pattern):
  w = tmp_path / 'w'
  capfd.readouterr()
  with pytest.raises(SystemExit) as exit_info:
    main.run(['gdiff', *TINY, f'--workdir={w}', '--mode=all', flag])
  lines = capfd.readouterr().err.splitlines()
  assert exit_info.value.code == 2 and len(lines) == 1, lines
  assert lines[0].startswith('gdiff: error: ') and re.search(pattern, lines[0]), lines[0]
  assert not w.exists()  # no stage started


def _dosage(folder):
  with h5py.File(os.path.join(folder, 'synthetic.h5')) as f:
    return f['dosage'][()]


def test_named_cohorts_stay_and_evaluate_judges_the_named_one(tiny_run):
  w, proc = tiny_run
  assert proc.returncode == 0
  run = lambda mode, *flags: main.run(['gdiff', *TINY, f'--workdir={w}', f'--mode={mode}', *flags])
  layout = wd.Layout(w)
  default_before = _dosage(layout.samples)
  run('sample', '--config.sample.out=a', '--config.sample.seed=1')
  run('sample', '--config.sample.out=b', '--config.sample.seed=2')
  a, b = _dosage(layout.cohort('a')), _dosage(layout.cohort('b'))
  assert a.shape == b.shape == default_before.shape and not np.array_equal(a, b)
  for name in ('a', 'b'):
    files = set(os.listdir(layout.cohort(name)))
    assert {'synthetic.vcf.gz', 'synthetic.vcf.gz.tbi', 'synthetic.bed', 'synthetic.h5'} <= files
    assert {'manifest.json'} <= files
    assert wd.read_record(w, 'sample', name)['cohort'] == name
  np.testing.assert_array_equal(_dosage(layout.samples), default_before)  # untouched

  run('evaluate', '--config.sample.out=b', '--config.sample.seed=2')
  report_b = layout.cohort_report('b')
  with open(os.path.join(report_b, wd.COHORT_FILE)) as f:
    assert json.load(f)['cohort'] == 'b'
  with open(os.path.join(report_b, 'metrics.json')) as f:
    assert json.load(f)['label_counts_synthetic'] is not None
  assert wd.read_record(w, 'evaluate', 'b') is not None
  # Evaluating a cohort that was never sampled is refused, naming it.
  with pytest.raises(SystemExit):
    run('evaluate', '--config.sample.out=c')

  # Re-sampling b removes its report with the old cohort; a stays.
  run('sample', '--config.sample.out=b', '--config.sample.seed=3')
  assert not os.path.exists(report_b) and wd.read_record(w, 'evaluate', 'b') is None
  np.testing.assert_array_equal(_dosage(layout.cohort('a')), a)
  # Re-sampling the default cohort marks W/report stale and keeps the named cohorts.
  assert wd.read_record(w, 'evaluate') is not None
  run('sample', '--config.sample.seed=4')
  assert os.path.exists(os.path.join(layout.report, wd.STALE_FILE))
  assert wd.read_record(w, 'evaluate') is None
  assert not np.array_equal(_dosage(layout.samples), default_before)
  np.testing.assert_array_equal(_dosage(layout.cohort('a')), a)
  assert os.path.isdir(layout.cohort('b'))
