"""bench/scale.py: per-child peak memory, the linear fit and the projection."""

import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _scale():
  spec = importlib.util.spec_from_file_location('scale', os.path.join(ROOT, 'bench', 'scale.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_peak_memory_is_each_childs_own(tmp_path):
  scale = _scale()
  log = str(tmp_path / 'log')
  held = bytearray(400 * 2**20)  # this process is large: a forked child would count it
  held[::4096] = b'1' * len(held[::4096])
  big = scale.run_stage(
    [sys.executable, '-c', 'x = bytearray(300 * 2**20); x[::4096] = b"1" * len(x[::4096])'], log
  )
  small = scale.run_stage([sys.executable, '-c', 'pass'], log)
  assert big['peak_rss_mib'] > 300 > 100 > small['peak_rss_mib']  # not the max over children


def test_linear_fit_and_projection_recover_a_known_cost():
  scale = _scale()
  rows = [
    {
      'snps': s,
      'people': n,
      'segments': 'genome',
      'stage': stage,
      'seconds': 2.0 + 1e-6 * s * n * (k + 1),
      'peak_rss_mib': 1.0,
      'uptime': 'load average: 1.0',
    }
    for s, n in ((1000, 100), (4000, 500), (8000, 1000))
    for k, stage in enumerate(scale.STAGES)
  ]
  lines = scale.fit_lines(rows)
  for k, stage in enumerate(scale.STAGES):
    a, b = lines[stage]
    assert abs(a - 2.0) < 1e-6 and abs(b - 1e-6 * (k + 1)) < 1e-12
  text = scale.report(rows, (10**6, 10**5), [1, 10])
  # 1 machine: (2 + 1e5 * (1 + 2 + 3 + 4)) / 3600 h; 10 machines split train (k = 1) only.
  one = sum(2.0 + 1e5 * (k + 1) for k in range(4)) / 3600
  ten = (4 * 2.0 + 1e5 * (1 + 3 + 4) + 1e5 * 2 / 10) / 3600
  assert '| 1 | ' in text and f'{one:.2f} |' in text and f'{ten:.2f} |' in text
