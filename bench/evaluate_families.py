"""Seconds each evaluate metric family takes per row on a finished workdir (no report written).

  .venv/bin/python bench/evaluate_families.py W configs/als.py [ROWS]

Judges the first ROWS rows of `families.methods` (default 2: gdiff, then the first
baseline) with every metric of `families.FAMILIES`, one at a time, and prints the seconds
and the headline values. The first row also pays for the real-side references (classifiers
trained on real train, the real-train GWAS), later rows show a row's own cost. Reads W only.
"""

from __future__ import annotations

import importlib.util
import sys
import time

from gdiff.evaluate import families, run


def main(workdir: str, config_file: str, rows: int = 2) -> None:
  spec = importlib.util.spec_from_file_location('cohort_config', config_file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  ctx = run.load(module.get_config(), workdir)
  for name, make in families.methods(ctx)[:rows]:
    cohort = make()
    for section, metrics in families.FAMILIES.items():
      for metric in metrics:
        start = time.time()
        values, _ = metric(ctx, cohort)
        heads = ('recovery_min', 'direction_agreement', 'spearman_log10p')
        shown = {k: round(values[k], 3) for k in heads if values and k in values}
        print(f'{name}\t{section}\t{metric.__name__}\t{time.time() - start:.1f} s\t{shown}')


if __name__ == '__main__':
  main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:]))
