"""Test-wide setup: two fake CPU devices, so sharded code paths run in every test.

Must run before JAX is imported anywhere; pytest imports conftest first.
"""

import os

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
if '--xla_force_host_platform_device_count' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             ' --xla_force_host_platform_device_count=2').strip()
