"""bench/train_throughput.py: compiler-option variants reach XLA and are compared fairly."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bench():
  path = os.path.join(ROOT, 'bench', 'train_throughput.py')
  spec = importlib.util.spec_from_file_location('train_throughput', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_parse_variants_types_values_and_keeps_commas():
  got = _bench().parse_variants(
    'base:;two:xla_cpu_enable_fast_math=true xla_cpu_prefer_vector_width=512;'
    'ynn:xla_cpu_experimental_ynn_fusion_type=A,B'
  )
  assert got == {
    'base': {},
    'two': {'xla_cpu_enable_fast_math': True, 'xla_cpu_prefer_vector_width': 512},
    'ynn': {'xla_cpu_experimental_ynn_fusion_type': 'A,B'},
  }


def test_variants_compile_with_their_options_and_give_the_same_first_step():
  bench = _bench()
  small = ('model.mlp_widths=(64, 32, 16)', 'model.norm_groups=8')
  rows = bench.bench_variants(
    'mlp', 'default', 1, 2, 'paper', {'a': {}, 'b': {'xla_cpu_prefer_vector_width': 256}}, small
  )
  assert [r['variant'] for r in rows] == ['a', 'b']
  assert rows[0]['loss_rel_diff'] == 0 and rows[1]['loss_rel_diff'] < 1e-5
  assert all(r['samples_per_s'] > 0 for r in rows)
  # An unknown option is an error, so the options do reach XLA's compiler.
  with pytest.raises(Exception, match='no_such_option'):
    bench.bench_variants('mlp', 'default', 1, 1, 'paper', {'x': {'no_such_option': 1}}, small)
