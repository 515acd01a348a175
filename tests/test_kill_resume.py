"""kill -9 in the middle of prepare and of train leaves a workdir the next run finishes.

A real `python -m gdiff.main` is killed (SIGKILL: no handler, no cleanup) while it
writes data/ (prepare) and after training has saved a checkpoint; the next run
in the same workdir must then finish the stage (prepare from scratch, train
resumed from the checkpoint) and leave no temporary folder behind.
"""

import glob
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from configs import als
from gdiff import pipeline
from gdiff import workdir as wd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OVERRIDES = {
  'generator': 'diffusion',  # killed after a training checkpoint: the diffusion trainer
  'data.simulate.num_samples': 80,
  'data.simulate.num_contigs': 1,
  'data.simulate.max_snps_per_contig': 256,
  'model.name': 'mlp',
  'model.mlp_widths': (32, 16, 8),
  'model.norm_groups': 4,
  'train.num_steps': 40,
  'train.eval_every': 0,
  'train.checkpoint_every': 1,
  'train.log_every': 1,
  'input.batch_size': 8,
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


def _start(workdir: str, mode: str) -> subprocess.Popen:
  flags = [f'--config.{k}={v}' for k, v in OVERRIDES.items()]
  return subprocess.Popen(
    [
      sys.executable,
      '-m',
      'gdiff.main',
      '--config=configs/als.py',
      f'--workdir={workdir}',
      f'--mode={mode}',
      *flags,
    ],
    cwd=ROOT,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
    env=dict(os.environ, JAX_PLATFORMS='cpu'),
  )


def _kill_when(proc: subprocess.Popen, ready, what: str, timeout_s: float = 240) -> None:
  start = time.time()
  while not ready():
    if proc.poll() is not None:
      pytest.fail(f'gdiff ended before {what}: {proc.stderr.read().decode()[-2000:]}')
    if time.time() - start > timeout_s:
      proc.kill()
      pytest.fail(f'no {what} after {timeout_s} s')
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  proc.stderr.close()


def _hidden(workdir: str) -> list[str]:
  return sorted(p for p in os.listdir(workdir) if p.startswith('.'))


def test_kill_during_prepare_and_train_then_the_next_run_finishes(tmp_path, caplog):
  w = str(tmp_path / 'w')
  layout = wd.Layout(w)
  proc = _start(w, 'prepare')
  _kill_when(
    proc,
    lambda: glob.glob(os.path.join(w, '.data.gdiff-tmp-*', 'source', '*')),
    'data being written',
  )
  assert _hidden(w) and not os.path.exists(layout.data)  # half a cohort, out of the way
  config = _config()
  pipeline.run(config, w, 'prepare')  # the temporary of the killed run goes
  assert _hidden(w) == [] and wd.read_record(w, 'prepare') is not None
  assert sorted(os.listdir(w)) == ['data', 'embedding', 'stages']

  proc = _start(w, 'train')
  steps = lambda: (
    [int(s) for s in os.listdir(os.path.join(layout.checkpoints, 'latest')) if s.isdigit()]
    if os.path.isdir(os.path.join(layout.checkpoints, 'latest'))
    else []
  )
  _kill_when(proc, lambda: max(steps(), default=0) >= 2, 'checkpoint of step 2')
  assert wd.read_record(w, 'train') is None
  done = max(steps())
  config.train.num_steps = done + 2  # resume and finish quickly
  with caplog.at_level(logging.INFO):
    pipeline.run(config, w, 'train')
  assert f'resuming from step {done}' in caplog.text
  assert wd.read_record(w, 'train')['num_steps'] == done + 2
  assert max(steps()) == done + 2
  assert _hidden(w) == []
