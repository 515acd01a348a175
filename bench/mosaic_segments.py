"""The mosaic baseline's own privacy-fidelity curve: its segment length swept.

  .venv/bin/python bench/mosaic_segments.py --workdir=W [--config=configs/als.py]
      [--segments=12,25,50,100,200] [--holdout=val]

W is a finished pipeline workdir (data, embedding, samples). For each mean segment
length (SNPs copied in one run from one training person of the same class), the
evaluate stage is run with the mosaic as its only baseline, in W/mosaic_segments/<L>
(links to W's data, embedding and samples; cheap evaluate: logreg + mlp, one seed),
and one row per length is printed as markdown: where a resampling simulator sits on
the same axes as gdiff's sweep (bench/quality.py). Every report now holds the curve at
evaluate.mosaic_segment_snps (rows mosaic@<L>); this script is for other lengths alone.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import quality  # noqa: E402
from gdiff import workdir as wd  # noqa: E402
from gdiff.evaluate import protocol  # noqa: E402
from gdiff.evaluate import run as evaluate_lib  # noqa: E402

# (column, path in the mosaic's metrics); '{holdout}': the held-out split's display name
COLUMNS = (
  ('recovery min', 'utility.recovery_min'),
  ('AA_truth {holdout}', 'privacy.embedding.aa_truth_holdout'),
  ('AA_syn {holdout}', 'privacy.embedding.aa_syn_holdout'),
  ('privacy loss', 'privacy.embedding.privacy_loss'),
  ('MIA AUC emb', 'privacy.embedding.mia_auc'),
  ('MIA AUC geno', 'privacy.genotype.mia_auc'),
  ('LD r2 corr', 'realism.ld_r2_corr'),
  ('LD r2 mean', 'realism.ld_r2_mean'),
  ('PCA AUC', 'realism.pca_two_sample_auc'),
)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--config', default='configs/als.py')
  parser.add_argument('--segments', default='12,25,50,100,200')
  parser.add_argument('--holdout', default='val', choices=sorted(protocol.HOLDOUTS))
  args = parser.parse_args()
  logging.basicConfig(level=logging.WARNING)
  names = [protocol.named(c, args.holdout) for c, _ in COLUMNS]
  rows = [f'| mosaic segment (SNPs) | {" | ".join(names)} | s |', '|' + '---|' * (len(COLUMNS) + 2)]
  for seg in [int(s) for s in args.segments.split(',') if s]:
    w = os.path.join(args.workdir, 'mosaic_segments', str(seg))
    os.makedirs(w, exist_ok=True)
    for d in (*wd.STAGE_FOLDERS['prepare'], *wd.STAGE_FOLDERS['sample']):
      link = os.path.join(w, d)
      if not os.path.exists(link):
        os.symlink(os.path.abspath(os.path.join(args.workdir, d)), link)
    config = quality.load_config(args.config)
    for k, v in {
      **quality.CHEAP_EVALUATE,
      'evaluate.holdout': args.holdout,
      'evaluate.baselines': ('mosaic',),
      'evaluate.mosaic_segment_snps': (seg,),
    }.items():
      quality.set_value(config, k, v)
    t0 = time.perf_counter()
    m = evaluate_lib.evaluate(config, w)['methods'][f'mosaic@{seg:g}']
    cells = [format(quality.lookup(m, path), '.3f') for _, path in COLUMNS]
    rows.append(f'| {seg} | {" | ".join(cells)} | {time.perf_counter() - t0:.0f} |')
    print(rows[-1], flush=True)
  print(f'\nHeld-out split: {args.holdout}. `{" ".join(sys.argv)}`\n')
  print('\n'.join(rows))


if __name__ == '__main__':
  main()
