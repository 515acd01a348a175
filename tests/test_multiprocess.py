"""Two JAX processes (one CPU device each, coordinator on 127.0.0.1) run the whole
pipeline exactly as one process with two devices: same data shards, same noise,
same parameters, the same synthetic people; one writer of every file. Both
checkpoint managers save at every step, so their asynchronous saves overlap as
often as possible (they once hung there on barriers of the same name)."""

import os
import shutil
import signal
import subprocess
import sys

import h5py
import jax
import numpy as np
import pytest

from configs import als
from gdiff import pipeline, sample

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = 300
OVERRIDES = {
  'generator': 'diffusion',  # this test is about the diffusion generator's collectives
  'data.simulate.num_samples': 80,
  'data.simulate.num_contigs': 1,
  'data.simulate.max_snps_per_contig': 256,
  'model.name': 'mlp',
  'model.mlp_widths': (32, 16, 8),
  'model.norm_groups': 4,
  'train.num_steps': 4,
  'train.eval_every': 1,
  'train.checkpoint_every': 1,
  'train.log_every': 1,
  'input.batch_size': 8,
  'input.data_shards': 2,
  'sample.batch_size': 16,
  'sample.steps': 5,
  'evaluate.classifiers': ('logreg',),
  'evaluate.seeds': 1,
  'evaluate.baselines': ('independent',),
}


def _config():
  c = als.get_config()
  for key, value in OVERRIDES.items():
    *path, leaf = key.split('.')
    node = c
    for p in path:
      node = node[p]
    node[leaf] = value
  return c


def _flags():
  return [f'--config.{k}={v}' for k, v in OVERRIDES.items()]


@pytest.mark.skipif(shutil.which('bash') is None, reason='needs bash for launch/local.sh')
def test_two_processes_equal_one_process_with_two_devices(tmp_path):
  assert len(jax.devices()) == 2  # conftest's fake devices
  config = _config()
  prepared = str(tmp_path / 'prepared')
  pipeline.prepare(config, prepared)
  one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
  shutil.copytree(prepared, one)
  shutil.copytree(prepared, two)

  pipeline.run(config, one, 'train')
  pipeline.run(config, one, 'sample')

  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
  env['PYTHONPATH'] = ROOT
  proc = subprocess.Popen(
    [
      'bash',
      os.path.join(ROOT, 'launch', 'local.sh'),
      '2',
      '--config=configs/als.py',
      f'--workdir={two}',
      '--mode=all',
      *_flags(),
    ],
    cwd=ROOT,
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    start_new_session=True,
  )
  try:
    log, stderr = proc.communicate(timeout=TIMEOUT_S)
  except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)  # both gdiff processes, not only bash
    log, stderr = proc.communicate()
    pytest.fail(
      f'launch/local.sh took over {TIMEOUT_S} s; its log ends:\n{log[-3000:]}\n{stderr[-1000:]}'
    )
  assert proc.returncode == 0, log[-2000:] + stderr[-2000:]
  assert 'process 1 of 2' in log  # log lines go to stdout
  # Each process saved its own data-iterator position.
  loader_dir = os.path.join(two, 'checkpoints', 'latest', '4', 'loader')
  assert sorted(f for f in os.listdir(loader_dir) if f.endswith('.json')) == [
    'process_0-of-2.json',
    'process_1-of-2.json',
  ]

  a, step_a = sample.restore_params(config, one, 'latest', use_ema=False)
  b, step_b = sample.restore_params(config, two, 'latest', use_ema=False)
  earlier, _ = sample.restore_params(config, one, 2, use_ema=False)
  assert step_a == step_b == 4
  diff = max(
    jax.tree.leaves(
      jax.tree.map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), a, b)
    )
  )
  moved = max(
    jax.tree.leaves(
      jax.tree.map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), a, earlier)
    )
  )
  assert moved > 1e-6  # training moved the parameters, so equality means something
  assert diff <= 1e-6, f'2 processes differ from 1 process x 2 devices by {diff}'

  def people(w):
    with h5py.File(os.path.join(w, 'samples', 'synthetic.h5'), 'r') as f:
      return f['dosage'][()], f['label_ids'][()]

  np.testing.assert_array_equal(people(one)[0], people(two)[0])
  np.testing.assert_array_equal(people(one)[1], people(two)[1])
  assert os.path.exists(os.path.join(two, 'report', 'metrics.json'))
  assert sorted(os.listdir(os.path.join(two, 'stages'))) == [
    'evaluate.json',
    'prepare.json',
    'sample.json',
    'train.json',
  ]
