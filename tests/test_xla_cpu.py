"""gdiff.xla_cpu: the compilation cache is on by default, yields to the user, and is used.

Each case runs in a fresh interpreter: JAX reads its cache settings once per process.
"""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp

from gdiff import xla_cpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Compiles one function twice in two processes; prints the cache dir and whether the second
# process found the first one's entry (a cache hit is logged by jax at DEBUG).
_SCRIPT = textwrap.dedent(
  """
  import logging, sys
  import jax, jax.numpy as jnp
  from gdiff import xla_cpu
  path = xla_cpu.configure()
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  hits = []
  class Hits(logging.Handler):
    def emit(self, record):
      if 'cache hit' in record.getMessage().lower():
        hits.append(record.getMessage())
  logger = logging.getLogger('jax._src.compiler')
  logger.setLevel(logging.DEBUG)
  logger.addHandler(Hits())
  f = jax.jit(lambda x: jnp.sin(x) @ x.T + 1.0)
  print(path, float(f(jnp.ones((8, 8))).sum()), bool(hits))
  """
)


def _run(env_extra: dict, tmp_path) -> list[str]:
  env = {k: v for k, v in os.environ.items() if not k.startswith('JAX_COMPILATION_CACHE')}
  env.update(XDG_CACHE_HOME=str(tmp_path / 'xdg'), PYTHONPATH=ROOT, JAX_PLATFORMS='cpu')
  env.update(env_extra)
  out = subprocess.run(
    [sys.executable, '-c', _SCRIPT], env=env, capture_output=True, text=True, check=True
  )
  return out.stdout.split()


def test_the_cache_is_on_by_default_and_a_second_process_hits_it(tmp_path):
  first = _run({}, tmp_path)
  second = _run({}, tmp_path)
  expected = str(tmp_path / 'xdg' / 'gdiff' / 'jax')
  assert first[0] == second[0] == expected
  assert os.listdir(expected), 'the first process wrote no cache entry'
  assert first[2] == 'False' and second[2] == 'True', (first, second)
  assert first[1] == second[1], 'a cached executable gave another result'


def test_the_users_cache_settings_win(tmp_path):
  mine = str(tmp_path / 'mine')
  assert _run({'JAX_COMPILATION_CACHE_DIR': mine}, tmp_path)[0] == mine
  assert os.listdir(mine)
  assert _run({'JAX_ENABLE_COMPILATION_CACHE': 'false'}, tmp_path)[0] == 'None'
  assert not os.path.exists(tmp_path / 'xdg' / 'gdiff')


def test_cpu_flags_never_override_the_users_xla_flags():
  flags = {'xla_cpu_enable_fast_math': 'false', 'xla_cpu_use_thunk_runtime': 'true'}
  got = xla_cpu.with_cpu_flags('--xla_cpu_enable_fast_math=true --other=1', flags)
  assert got.split() == [
    '--xla_cpu_enable_fast_math=true',
    '--other=1',
    '--xla_cpu_use_thunk_runtime=true',
  ]
  assert xla_cpu.with_cpu_flags('', flags).split() == [
    '--xla_cpu_enable_fast_math=false',
    '--xla_cpu_use_thunk_runtime=true',
  ]


def test_default_cache_dir_follows_xdg():
  assert xla_cpu.default_cache_dir({'XDG_CACHE_HOME': 'c'}) == os.path.join('c', 'gdiff', 'jax')
  assert xla_cpu.default_cache_dir({}).endswith(os.path.join('.cache', 'gdiff', 'jax'))


def test_step_options_remove_the_weight_copies_of_a_donated_step():
  # A weight read by a backward matmul and overwritten in place by the donated update:
  # XLA:CPU's default copy insertion copies it first; the step's options do not.
  def step(params, x):
    def loss(p):
      w, v = p
      h = jnp.tanh(jnp.tanh(x @ v) @ w)
      return jnp.sum((h @ v.T) ** 2)

    grads = jax.grad(loss)(params)
    return jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads)

  params = (jnp.ones((16, 16)), jnp.ones((32, 16)))
  x = jnp.ones((4, 32))

  def copies(options):
    jitted = jax.jit(step, donate_argnums=0, compiler_options=options)
    return jitted.lower(params, x).compile().as_text().count(' copy(')

  assert copies(None) > 0
  assert copies(xla_cpu.step_options('cpu', environ={})) == 0
  assert xla_cpu.step_options('gpu', environ={}) is None
  # The user's XLA_FLAGS win: an option named there is not passed again.
  mine = {'XLA_FLAGS': '--xla_cpu_copy_insertion_use_region_analysis=false --other=1'}
  assert xla_cpu.step_options('cpu', environ=mine) is None
