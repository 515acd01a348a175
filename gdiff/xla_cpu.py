"""How XLA compiles for a gdiff run: the persistent compilation cache and CPU compiler options.

The command line (`gdiff.main`) calls `configure()` once, before JAX starts its backend and
before the first compile; library code never does. Every choice there yields to the user's own
setting: JAX's variables (`JAX_COMPILATION_CACHE_DIR`, `JAX_ENABLE_COMPILATION_CACHE=false`)
and any flag already named in `XLA_FLAGS`. `step_options()` is per function instead (and also
yields to `XLA_FLAGS`): the compiler options of a training step with a donated state
(`jax.jit(compiler_options=...)`), used by the diffusion trainer and the evaluate classifiers
wherever they are called from.

The cache: a training step of the paper's CNN U-Net takes about a minute to compile on a
2-core CPU, paid again by every process that compiles the same step (a resumed run, sampling
again, a rerun of the same config). With the cache a later process loads the compiled code
from disk (docs/benchmarks.md, "Compile time").
"""

from __future__ import annotations

import os

import jax

# XLA:CPU flags gdiff sets when the user has not: {flag: value}, each with its reason.
# Empty: none of the options measured on the networks' training step helped beyond noise
# (docs/benchmarks.md, "XLA CPU options").
CPU_FLAGS: dict[str, str] = {}

# Compiler options of the training step on a CPU, {option: value}, each with its reason.
STEP_OPTIONS_CPU: dict[str, object] = {
  # Without it XLA copies every weight that a backward matmul reads before the donated
  # update overwrites it: 10 % of the paper MLP's step (docs/benchmarks.md#parameter-copies).
  'xla_cpu_copy_insertion_use_region_analysis': True,
}


def step_options(platform: str, environ=os.environ) -> dict[str, object] | None:
  """`jax.jit(compiler_options=...)` for a training step (donated state) on `platform`.

  An option the user named in `XLA_FLAGS` is left out, so the user's value holds.
  """
  if platform != 'cpu':
    return None
  named = _named_flags(environ.get('XLA_FLAGS', ''))
  return {k: v for k, v in STEP_OPTIONS_CPU.items() if k not in named} or None


def default_cache_dir(environ=os.environ) -> str:
  """$XDG_CACHE_HOME/gdiff/jax, or ~/.cache/gdiff/jax."""
  base = environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'gdiff', 'jax')


def enable_compilation_cache(environ=os.environ) -> str | None:
  """Turns on JAX's persistent compilation cache unless the user chose otherwise.

  Returns:
    The cache directory in use, or None when `JAX_ENABLE_COMPILATION_CACHE` is false.
  """
  if not jax.config.jax_enable_compilation_cache:
    return None
  if jax.config.jax_compilation_cache_dir:  # the user's JAX_COMPILATION_CACHE_DIR
    return jax.config.jax_compilation_cache_dir
  path = default_cache_dir(environ)
  # No size limit (JAX's default): a limit needs the `filelock` package. Only compiles over
  # `jax_persistent_cache_min_compile_time_secs` (1 s) are kept, a few MiB each; the
  # directory can be deleted at any time.
  jax.config.update('jax_compilation_cache_dir', path)
  return path


def _named_flags(xla_flags: str) -> set[str]:
  """The flag names an `XLA_FLAGS` string sets."""
  return {item.lstrip('-').split('=', 1)[0] for item in xla_flags.split()}


def with_cpu_flags(xla_flags: str, cpu_flags: dict[str, str]) -> str:
  """`xla_flags` with `--flag=value` appended for each flag it does not name already."""
  named = _named_flags(xla_flags)
  extra = [f'--{k}={v}' for k, v in cpu_flags.items() if k not in named]
  return ' '.join([xla_flags.strip(), *extra]).strip()


def configure(environ=os.environ) -> str | None:
  """Sets gdiff's XLA defaults in this process (call before the first JAX computation).

  Returns:
    The compilation cache directory in use, or None.
  """
  if CPU_FLAGS:
    environ['XLA_FLAGS'] = with_cpu_flags(environ.get('XLA_FLAGS', ''), CPU_FLAGS)
  return enable_compilation_cache(environ)
