"""gdiff.evaluate.parallel: rows judged in threads give the same report as one at a time."""

import threading

import evaluate_testdata as td
import numpy as np
import pytest

from configs import base
from gdiff.evaluate import parallel, run


def _config(workers: int):
  c = base.get_config()
  ev = c.evaluate
  ev.workers = workers
  ev.classifiers = ('logreg', 'mlp')
  ev.seeds = 2
  ev.classifier_steps = 20
  ev.augmentation_fractions = (0.5,)
  ev.baselines = ('independent', 'gaussian', 'mosaic@10', 'resample')
  ev.genotype_classifiers = ('logreg',)
  ev.gwas = False  # plink2's own threads are not what is tested here
  ev.block_size = 64
  ev.ld_max_distance_snps = 10
  ev.num_pcs = 4
  ev.detection_max_people = 60
  return c


@pytest.fixture
def workdir(tmp_path, monkeypatch):
  return td.small_workdir(tmp_path, monkeypatch)


def _judged(workdir, workers: int):
  ctx = run.load(_config(workers), str(workdir))
  metrics, curves, exposed = run.judge_all(ctx, {}, str(workdir))
  return metrics, curves, exposed


def _assert_same(a, b, path=''):
  """Every number equal: floats to rounding (BLAS on one thread or two), the rest exactly."""
  if isinstance(a, dict):
    assert sorted(a) == sorted(b), path
    for k in a:
      _assert_same(a[k], b[k], f'{path}.{k}')
  elif isinstance(a, (list, tuple)):
    assert len(a) == len(b), path
    for i, (u, v) in enumerate(zip(a, b)):
      _assert_same(u, v, f'{path}[{i}]')
  elif isinstance(a, np.ndarray):
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=path)
  elif isinstance(a, float):
    assert a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True), path
  else:
    assert a == b, path


def test_two_workers_write_the_report_of_one(workdir):
  one = _judged(workdir, 1)
  two = _judged(workdir, 2)
  metrics = one[0]
  assert list(metrics['methods']) == [
    'gdiff',
    'independent',
    'gaussian',
    'mosaic@10',
    'resample',
  ]
  assert metrics['attacks'] and metrics['augmentation'] and metrics['reference']
  assert metrics['methods']['resample']['privacy']['genotype']['identical_copies'] > 0
  _assert_same(one, two)


def _square(i, seen):
  seen.append(threading.current_thread().name)
  return i * i


def test_pool_keeps_submission_order_and_runs_inline_with_one_worker():
  for workers in (1, 2):
    seen = []
    with parallel.pool(workers) as submit:
      futures = [submit(_square, i, seen) for i in range(5)]
    assert [f.result() for f in futures] == [0, 1, 4, 9, 16]
    main = threading.current_thread().name
    assert all(name == main for name in seen) == (workers == 1)
