"""gdiff: synthetic human genotypes from a fitted generator (ar or diffusion), in JAX/Flax.

import gdiff, gdiff.api
model = gdiff.load('runs/kg1')  # a finished workdir; see gdiff.api
# any tool's synthetic VCF judged by gdiff's report:
gdiff.api.evaluate(real='runs/kg1', synthetic='other.vcf.gz', out='runs/other_report')
"""

__version__ = '0.1.0'


def load(workdir: str):
  """The fitted generator of a finished workdir (`gdiff.api.load`; imports JAX on first use)."""
  from gdiff import api

  return api.load(workdir)
