"""Test-wide setup: two fake CPU devices, so sharded code paths run in every test.

Must run before JAX is imported anywhere; pytest imports conftest first.
"""

import os

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
if '--xla_force_host_platform_device_count' not in os.environ.get('XLA_FLAGS', ''):
  # Cheaper compiles (most test time is compilation); numerics are unchanged in kind.
  os.environ['XLA_FLAGS'] = (
    os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=2'
    ' --xla_backend_optimization_level=0'
    ' --xla_llvm_disable_expensive_passes=true'
  ).strip()
