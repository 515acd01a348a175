"""ar.segments (gdiff.ar.segments): the genome fit as independent segment jobs and stitched."""

import json
import os
import shutil

import h5py
import numpy as np

from configs import kg1
from gdiff import pipeline


def _config(**ar):
  c = kg1.get_config()
  s = c.data.simulate
  s.samples_per_population = (6, 6, 6, 6)
  s.num_contigs = 3
  s.contig_length = 200_000
  s.max_snps_per_contig = 48
  c.ar.context_snps = (4,)
  c.ar.max_iter = 30
  c.ar.block_snps = 16
  c.ar.update(ar)
  return c


def test_segmented_equals_unsegmented_byte_for_byte(tmp_path):
  w0, w1 = str(tmp_path / 'w0'), str(tmp_path / 'w1')
  pipeline.run(_config(), w0, 'prepare')
  shutil.copytree(w0, w1)
  for mode in ('train', 'sample'):
    pipeline.run(_config(), w0, mode)
    pipeline.run(_config(segments='32'), w1, mode)
  with open(os.path.join(w1, 'checkpoints', 'ar', 'fit.json')) as f:
    fit = json.load(f)
  assert len(fit['segments']) == 5 and any(s['lead'] for s in fit['segments'])
  for s in fit['segments']:
    assert os.path.exists(os.path.join(w1, 'checkpoints', 'ar', 'segments', s['name'], 'fit.json'))
  with h5py.File(os.path.join(w0, 'samples', 'synthetic.h5')) as a:
    with h5py.File(os.path.join(w1, 'samples', 'synthetic.h5')) as b:
      for name in ('dosage', 'hap0'):
        np.testing.assert_array_equal(a[name][()], b[name][()])
