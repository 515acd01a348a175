"""Validation-loss curves of the four networks on one prepared workdir.

  python bench/val_curves.py --prepared=W [--steps=1500] [--out=val_curves.md] \
      [--set train.learning_rate=2e-4 ...]

W is a workdir where `--mode=prepare` has run (e.g. of configs/als.py). Each
network trains from scratch in a copy of W with the config's sizes; the
curves come from each copy's logs/metrics.jsonl (val loss at every
`train.eval_every` steps, raw and EMA parameters).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from quality import parse_set, set_value  # noqa: E402

from configs import als  # noqa: E402
from gdiff import train  # noqa: E402
from gdiff import workdir as wd  # noqa: E402


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--prepared', required=True)
  parser.add_argument('--steps', type=int, default=1500)
  parser.add_argument('--eval_every', type=int, default=250)
  parser.add_argument('--models', default='mlp,cnn,mlp_cnn,transformer')
  parser.add_argument('--out', default='')
  parser.add_argument(
    '--set', action='append', default=[], help='KEY=VALUE config override (repeatable)'
  )
  args = parser.parse_args()
  curves, times = {}, {}
  for name in args.models.split(','):
    config = als.get_config()
    for key, value in (parse_set(s) for s in args.set):
      set_value(config, key, value)
    config.model.name = name
    config.train.num_steps = args.steps
    config.train.eval_every = args.eval_every
    config.train.checkpoint_every = args.steps
    with tempfile.TemporaryDirectory() as tmp:
      work = os.path.join(tmp, 'w')
      for part in wd.STAGE_FOLDERS['prepare']:  # the prepared cohort only, no checkpoints
        shutil.copytree(os.path.join(args.prepared, part), os.path.join(work, part))
      start = time.time()
      train.train_and_evaluate(config, work)
      times[name] = time.time() - start
      with open(os.path.join(wd.Layout(work).logs, 'metrics.jsonl')) as f:
        rows = [json.loads(line) for line in f]
    curves[name] = {
      r['step']: (r['val_loss'], r.get('val_loss_ema')) for r in rows if 'val_loss' in r
    }
  steps = sorted({s for c in curves.values() for s in c})
  lines = [
    '| step | ' + ' | '.join(f'{m} val (EMA)' for m in curves) + ' |',
    '|---|' + '---|' * len(curves),
  ]
  for s in steps:
    cells = []
    for m in curves:
      v = curves[m].get(s)
      cells.append(
        '' if v is None else f'{v[0]:.4f} ({v[1]:.4f})' if v[1] is not None else f'{v[0]:.4f}'
      )
    lines.append(f'| {s} | ' + ' | '.join(cells) + ' |')
  lines.append('| train time (s) | ' + ' | '.join(f'{times[m]:.0f}' for m in curves) + ' |')
  text = '\n'.join(lines)
  print(text)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(text + '\n')


if __name__ == '__main__':
  main()
