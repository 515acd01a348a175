"""gdiff: synthetic human genotypes from a fitted generator (ar or diffusion), in JAX/Flax.

import gdiff
model = gdiff.load('runs/kg1')  # a finished workdir; see gdiff.api
"""

__version__ = '0.1.0'


def load(workdir: str):
  """The fitted generator of a finished workdir (`gdiff.api.load`; imports JAX on first use)."""
  from gdiff import api

  return api.load(workdir)
