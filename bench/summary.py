"""The key numbers of finished runs, against the mosaic curve, as one markdown table each.

  .venv/bin/python bench/summary.py W [W ...]

Reads W/report/metrics.json of each workdir (a finished evaluate stage) and prints one
table: gdiff, the mosaic segment length nearest to gdiff in genotype membership AUC (the
mosaic curve's point that the report's dominance line reads), the best other baseline
rows, and the real held-out reference row, with the targets of the key columns in brackets.
This is the README's results table; docs/results.md has the reports' full tables.
"""

from __future__ import annotations

import argparse
import json
import os

# (header, section path in a method's metrics, format)
COLUMNS = (
  ('recovery min [≥ 0.95]', ('utility', 'recovery_min'), '{:.3f}'),
  ('hard pair [≥ 0.95]', ('utility_hard_pair', 'recovery_min'), '{:.3f}'),
  ('membership AUC emb / geno [≤ 0.55]', None, None),
  ('privacy loss [≤ 0.02]', ('privacy', 'embedding', 'privacy_loss'), '{:.3f}'),
  ('AA_truth / AA_syn [0.4–0.6]', None, None),
  ('LD r² corr [≥ 0.97]', ('realism', 'ld_r2_corr'), '{:.3f}'),
  ('detection AUC [≤ 0.60]', ('realism', 'detection_auc'), '{:.3f}'),
  ('copies [0]', ('privacy', 'genotype', 'identical_copies'), '{:d}'),
  ('genotype recovery min [≥ 0.95]', ('utility_genotype', 'recovery_min'), '{:.3f}'),
  ('GWAS direction agreement', ('gwas', 'direction_agreement'), '{:.2f}'),
)
# Columns shown only when gdiff's row has their section (reports made before them do not).
OPTIONAL = ('utility_hard_pair', 'utility_genotype', 'gwas')


def _get(d, path):
  for k in path:
    if not isinstance(d, dict) or k not in d:
      return None
    d = d[k]
  return d


def _cell(m: dict, header: str, path, fmt) -> str:
  if header.startswith('membership'):
    e, g = _get(m, ('privacy', 'embedding', 'mia_auc')), _get(m, ('privacy', 'genotype', 'mia_auc'))
    return '–' if e is None else f'{e:.3f} / {g:.3f}'
  if header.startswith('AA_truth'):
    t = _get(m, ('privacy', 'embedding', 'aa_truth_holdout'))
    s = _get(m, ('privacy', 'embedding', 'aa_syn_holdout'))
    return '–' if t is None else f'{t:.3f} / {s:.3f}'
  v = _get(m, path)
  if v is None:
    return '–'
  text = fmt.format(int(v) if fmt == '{:d}' else v)
  if header.startswith('detection'):
    se = _get(m, ('realism', 'detection_auc_se'))
    text += f' ± {se:.3f}' if se is not None else ''
  return text


def nearest_mosaic(metrics: dict) -> str:
  """The mosaic row nearest to gdiff in genotype membership AUC."""
  target = _get(metrics, ('methods', 'gdiff', 'privacy', 'genotype', 'mia_auc'))
  rows = [k for k in metrics['methods'] if k.startswith('mosaic')]
  return min(
    rows, key=lambda k: abs(metrics['methods'][k]['privacy']['genotype']['mia_auc'] - target)
  )


def table(workdir: str) -> str:
  with open(os.path.join(workdir, 'report', 'metrics.json')) as f:
    metrics = json.load(f)
  gdiff = metrics['methods']['gdiff']
  cols = [c for c in COLUMNS if not (c[1] and c[1][0] in OPTIONAL and c[1][0] not in gdiff)]
  rows = [('**gdiff**', metrics['methods']['gdiff'])]
  rows.append((nearest_mosaic(metrics), metrics['methods'][nearest_mosaic(metrics)]))
  ref = metrics['reference']
  rows.append(
    (f'real {metrics["holdout"]} (reference)', {k: ref[k] for k in ('realism', 'gwas') if k in ref})
  )
  out = ['| method | ' + ' | '.join(c[0] for c in cols) + ' |', '|---' * (len(cols) + 1) + '|']
  for name, m in rows:
    out.append(f'| {name} | ' + ' | '.join(_cell(m, *c) for c in cols) + ' |')
  dom = metrics.get('dominance', {})
  out.append('')
  out.append(
    f'Dominates the mosaic curve: {"yes" if dom.get("dominates") else "no"} '
    f'(membership AUC geno {dom.get("mia_auc", float("nan")):.3f}; '
    + '; '.join(
      f'{a["name"].format(holdout=metrics["holdout"])} {a["value"]:.3f} vs curve {a["curve"]:.3f}'
      for a in dom.get('axes', {}).values()
    )
    + ').'
  )
  return '\n'.join(out)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('workdirs', nargs='+')
  for w in parser.parse_args().workdirs:
    print(f'{w}\n\n{table(w)}\n')


if __name__ == '__main__':
  main()
