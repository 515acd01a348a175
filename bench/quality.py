"""Privacy-fidelity sweep: gdiff settings against the baselines, as a table and a frontier plot.

  .venv/bin/python bench/quality.py --config=configs/als.py --out=OUT \
      [--points=default,ddim_eta1,...] [--set=data.simulate.num_causal=3 ...] [--full=default] \
      [--holdout=val|test]

Every point is a real pipeline run (`gdiff.pipeline.run`, mode all) in OUT/runs/<point>;
a finished point is reused (the workdir stage records decide), keeping its recorded time.
The cohort is prepared once (OUT/prepared) and copied into each run; points that share
their training settings share one trained model (its checkpoints are copied), so a
sample-time point (guidance, DDIM steps and eta, EMA, checkpoint, x0 clipping) costs one
sample + evaluate, and only a training point (steps, model, dropout, ...) trains.
Sweep points use a cheaper evaluate (logreg + mlp, one seed, no augmentation curve; the
baselines only in the first point, as they do not depend on gdiff's settings); the points
named in --full get the configured (full) evaluate instead.

A sweep tunes settings, so by default every point (--full ones too) is judged on the val
split (`evaluate.holdout='val'`: the test split is never read; classifiers choose their
step on one stratified half of val and report on the other). Run the chosen setting once
more with --holdout=test (or the pipeline with evaluate.holdout='test') for final numbers.
A `--set evaluate.holdout=...` overrides --holdout. The table says which split its numbers
come from (read back from each point's metrics.json), in its first line and in the column
names (AA_truth val, ...; 'holdout' when the points differ).

Writes OUT/table.md (markdown), OUT/table.json and OUT/frontier.png: LD r^2 correlation
and whole-genotype detection AUC against genotype membership-inference AUC, PCA two-sample
AUC against embedding membership AUC, and AA_truth against AA_syn, for every gdiff point
and every baseline, with the targets (gdiff/evaluate/report.py TARGETS) drawn in. The
mosaic rows of the report (mosaic@<segment SNPs>, from the first point that has baselines)
are drawn as a curve, and the table's 'vs mosaic' column says whether each gdiff point
dominates that curve at its own membership AUC (`report.dominance`).
Timings are wall clock on a shared machine: noisy.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import logging
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import base  # noqa: E402
from gdiff import pipeline  # noqa: E402
from gdiff import workdir as wd  # noqa: E402
from gdiff.evaluate import protocol, report  # noqa: E402

# name -> (training overrides, sample overrides). Points with equal training overrides
# share one trained model. A name says what the point overrides on top of the run's --config
# and --set, not on top of any fixed default: 'default' is that config unchanged, and the same
# name means other settings under another config (on a config that already recombines,
# 'recomb32_long' changes only the steps). docs/sweeps.md names the config and --set of each
# table. Finished points are reused by name (OUT/runs/<point>), so keep names stable.
# The paper's network sizes (`base.paper_networks`), on top of a config that uses smaller ones.
_PAPER_NET = {
  f'model.{k}': v
  for k, v in base.paper_networks(base.get_config()).model.items()
  if k.startswith('cnn_') or k in ('mlp_widths', 'norm_groups')
}
# base.get_config()'s Transformer (12 layers, width 384), on top of a config with a smaller one.
_BASE_TRANSFORMER = {'model.name': 'transformer'} | {
  f'model.{k}': v for k, v in base.get_config().model.items() if k.startswith('transformer_')
}
# The `:diffusion` default network (`cpu_small` mlp_cnn) for 8 minutes; sample-time points share it.
_NET8_SMALL = {'model.name': 'mlp_cnn', 'train.num_steps': 2250}
# One sampler for the network points: 1,200 people by DDIM-50 (the paper CNN samples slowly).
_NET_SAMPLE = {'sample.num': 1200}
POINTS = {
  'default': ({}, {}),
  # The autoregressive generator (generator='ar'): penalties, context, temperature, unit.
  'ar_l2x10': ({'ar.l2_shared': 0.1, 'ar.l2_class': 1.0}, {}),
  'ar_l2x100': ({'ar.l2_shared': 1.0, 'ar.l2_class': 10.0}, {}),
  'ar_l2x0.1': ({'ar.l2_shared': 0.001, 'ar.l2_class': 0.01}, {}),
  'ar_shared': ({'ar.per_class': False}, {}),
  'ar_ctx8': ({'ar.context_snps': (8,)}, {}),
  'ar_ctx16': ({'ar.context_snps': (16,)}, {}),
  'ar_ctx32': ({'ar.context_snps': (32,)}, {}),
  'ar_ctx64': ({'ar.context_snps': (64,)}, {}),
  'ar_ctx16_64': ({'ar.context_snps': (16, 32, 64)}, {}),
  'ar_temp0.9': ({}, {'sample.temperature': 0.9}),
  'ar_temp0.95': ({}, {'sample.temperature': 0.95}),
  'ar_temp1.1': ({}, {'sample.temperature': 1.1}),
  'ar_temp1.2': ({}, {'sample.temperature': 1.2}),
  'ar_genotype': ({'ar.unit': 'genotype'}, {}),
  'ar_iter50': ({'ar.max_iter': 50}, {}),
  'ar_lbfgs': ({'ar.solver': 'lbfgs', 'ar.max_iter': 100, 'ar.tol': 1e-5}, {}),
  'ar_newton': ({'ar.solver': 'newton', 'ar.max_iter': 30, 'ar.tol': 1e-4}, {}),
  'ar_newton_l2x2': (
    {'ar.solver': 'newton', 'ar.max_iter': 30, 'ar.tol': 1e-4}
    | {'ar.l2_shared': 0.02, 'ar.l2_class': 0.2},
    {},
  ),
  'diffusion': ({'generator': 'diffusion'}, {}),
  'ddim_eta1': ({}, {'sample.eta': 1.0}),
  'ddim100_eta1': ({}, {'sample.eta': 1.0, 'sample.steps': 100}),
  'ddim20': ({}, {'sample.steps': 20}),
  'guidance1': ({}, {'sample.guidance': 1.0}),
  'guidance3': ({}, {'sample.guidance': 3.0}),
  'eta1_guidance1': ({}, {'sample.eta': 1.0, 'sample.guidance': 1.0}),
  'raw_params': ({}, {'sample.use_ema': False}),
  'clip3': ({}, {'sample.clip_x0': 3.0}),
  'eta1_clip3': ({}, {'sample.eta': 1.0, 'sample.clip_x0': 3.0}),
  'ddpm': ({}, {'sample.method': 'ddpm'}),
  'steps500': ({'train.num_steps': 500}, {}),
  'steps500_eta1': ({'train.num_steps': 500}, {'sample.eta': 1.0}),
  'steps3000': ({'train.num_steps': 3000}, {}),
  'steps3000_eta1': ({'train.num_steps': 3000}, {'sample.eta': 1.0}),
  'dropout': ({'model.dropout': 0.1}, {}),
  'dropout_eta1': ({'model.dropout': 0.1}, {'sample.eta': 1.0}),
  'wd': ({'train.weight_decay': 0.05}, {}),
  'lr1e-3': ({'train.learning_rate': 1e-3}, {}),
  'lr1e-3_eta1': ({'train.learning_rate': 1e-3}, {'sample.eta': 1.0}),
  'cnn': ({'model.name': 'cnn'}, {}),
  'cnn_eta1': ({'model.name': 'cnn'}, {'sample.eta': 1.0}),
  'mlp': ({'model.name': 'mlp'}, {}),
  'mlp_eta1': ({'model.name': 'mlp'}, {'sample.eta': 1.0}),
  'train_thresholds': ({}, {'sample.decode_thresholds': 'train'}),
  'vpred': ({'diffusion.prediction': 'v'}, {}),
  'vpred_eta1': ({'diffusion.prediction': 'v'}, {'sample.eta': 1.0}),
  'vpred_recomb8': ({'diffusion.prediction': 'v', 'train.recombine_segment_groups': 8.0}, {}),
  'mlp_vpred': ({'model.name': 'mlp', 'diffusion.prediction': 'v'}, {}),
  'recomb2': ({'train.recombine_segment_groups': 2.0}, {}),
  'recomb8': ({'train.recombine_segment_groups': 8.0}, {}),
  'recomb8_eta1': ({'train.recombine_segment_groups': 8.0}, {'sample.eta': 1.0}),
  'recomb32': ({'train.recombine_segment_groups': 32.0}, {}),
  'mlp_recomb2': ({'model.name': 'mlp', 'train.recombine_segment_groups': 2.0}, {}),
  'mlp_recomb4': ({'model.name': 'mlp', 'train.recombine_segment_groups': 4.0}, {}),
  'mlp_recomb8': ({'model.name': 'mlp', 'train.recombine_segment_groups': 8.0}, {}),
  'mlp_recomb32': ({'model.name': 'mlp', 'train.recombine_segment_groups': 32.0}, {}),
  'mlp_eta1_recomb32': (
    {'model.name': 'mlp', 'train.recombine_segment_groups': 32.0},
    {'sample.eta': 1.0},
  ),
  'recomb32_eta1': ({'train.recombine_segment_groups': 32.0}, {'sample.eta': 1.0}),
  # Recombination leaves nothing to memorise, so train harder: 3x the steps, 5x the rate.
  'recomb32_long': (
    {'train.recombine_segment_groups': 32.0, 'train.num_steps': 4500, 'train.learning_rate': 1e-3},
    {'sample.eta': 0.0},
  ),
  'recomb32_long_eta1': (
    {'train.recombine_segment_groups': 32.0, 'train.num_steps': 4500, 'train.learning_rate': 1e-3},
    {'sample.eta': 1.0},
  ),
  'recomb32_vlong': (
    {'train.recombine_segment_groups': 32.0, 'train.num_steps': 9000, 'train.learning_rate': 1e-3},
    {'sample.eta': 0.0},
  ),
  'recomb64_long': (
    {'train.recombine_segment_groups': 64.0, 'train.num_steps': 4500, 'train.learning_rate': 1e-3},
    {'sample.eta': 0.0},
  ),
  'long': ({'train.num_steps': 4500, 'train.learning_rate': 1e-3}, {}),
  'recomb4_long': (
    {'train.recombine_segment_groups': 4.0, 'train.num_steps': 4500, 'train.learning_rate': 1e-3},
    {'sample.eta': 0.0},
  ),
  'recomb4_long_eta1': (
    {'train.recombine_segment_groups': 4.0, 'train.num_steps': 4500, 'train.learning_rate': 1e-3},
    {'sample.eta': 1.0},
  ),
  # Networks at equal training time (8 min on 2 cores at the ALS shape, 128 groups; steps
  # from each network's measured samples/s), sampled alike:
  # docs/sweeps.md#networks-at-equal-training-time.
  'net8_cnn_paper3': (_PAPER_NET | {'model.name': 'cnn', 'train.num_steps': 1000}, _NET_SAMPLE),
  'net8_cnn_paper1': (
    _PAPER_NET | {'model.name': 'cnn', 'model.cnn_num_res_blocks': 1, 'train.num_steps': 1850},
    _NET_SAMPLE,
  ),
  'net8_mlp_cnn_paper1': (
    _PAPER_NET | {'model.name': 'mlp_cnn', 'model.cnn_num_res_blocks': 1, 'train.num_steps': 1800},
    _NET_SAMPLE,
  ),
  'net8_cnn_paper1_pool': (
    _PAPER_NET
    | {'model.name': 'cnn', 'model.cnn_num_res_blocks': 1, 'model.cnn_resample': 'pool'}
    | {'train.num_steps': 2550},
    _NET_SAMPLE,
  ),
  'net8_mlp_cnn_paper1_pool': (
    _PAPER_NET
    | {'model.name': 'mlp_cnn', 'model.cnn_num_res_blocks': 1, 'model.cnn_resample': 'pool'}
    | {'train.num_steps': 2450},
    _NET_SAMPLE,
  ),
  'net8_mlp_cnn_small': (_NET8_SMALL, _NET_SAMPLE),
  # DPM-Solver++(2M) against DDIM-50 on net8_mlp_cnn_small's trained network (sample-time).
  'net8_mlp_cnn_small_dpm10': (
    _NET8_SMALL,
    _NET_SAMPLE | {'sample.method': 'dpmpp2m', 'sample.steps': 10},
  ),
  'net8_mlp_cnn_small_dpm20': (
    _NET8_SMALL,
    _NET_SAMPLE | {'sample.method': 'dpmpp2m', 'sample.steps': 20},
  ),
  'net8_mlp_paper': (_PAPER_NET | {'model.name': 'mlp', 'train.num_steps': 9450}, _NET_SAMPLE),
  'net8_transformer_base': (_BASE_TRANSFORMER | {'train.num_steps': 1240}, _NET_SAMPLE),
  'net8_cnn_w32_pool': (
    _PAPER_NET
    | {'model.name': 'cnn', 'model.cnn_num_res_blocks': 1, 'model.cnn_resample': 'pool'}
    | {'model.cnn_base_width': 32, 'train.num_steps': 7000},
    _NET_SAMPLE,
  ),
}
CHEAP_EVALUATE = {
  'evaluate.classifiers': ('logreg', 'mlp'),
  'evaluate.seeds': 1,
  'evaluate.augmentation_classifier': '',
}
# (column, path in a method's metrics, format); '{holdout}': the held-out split's display name
COLUMNS = (
  ('recovery min', 'utility.recovery_min', '.3f'),
  ('hard-pair recovery min', 'utility_hard_pair.recovery_min', '.3f'),
  ('AA_truth {holdout}', 'privacy.embedding.aa_truth_holdout', '.3f'),
  ('AA_syn {holdout}', 'privacy.embedding.aa_syn_holdout', '.3f'),
  ('AA_truth train', 'privacy.embedding.aa_truth_train', '.3f'),
  ('AA_syn train', 'privacy.embedding.aa_syn_train', '.3f'),
  ('AA_truth geno {holdout}', 'privacy.genotype.aa_truth_holdout', '.3f'),
  ('AA_syn geno {holdout}', 'privacy.genotype.aa_syn_holdout', '.3f'),
  ('privacy loss', 'privacy.embedding.privacy_loss', '.3f'),
  ('MIA AUC emb', 'privacy.embedding.mia_auc', '.3f'),
  ('MIA AUC geno', 'privacy.genotype.mia_auc', '.3f'),
  ('copies', 'privacy.genotype.identical_copies', 'd'),
  ('AF r', 'realism.af_r', '.3f'),
  ('LD r2 corr', 'realism.ld_r2_corr', '.3f'),
  ('LD r2 mean', 'realism.ld_r2_mean', '.3f'),
  ('PCA AUC', 'realism.pca_two_sample_auc', '.3f'),
  ('detection AUC', 'realism.detection_auc', '.3f'),
  ('detection SE', 'realism.detection_auc_se', '.3f'),
)


def load_config(spec: str):
  """`path/to/config.py[:arg]` -> ConfigDict, as config_flags reads it."""
  path, _, arg = spec.partition(':')
  module_spec = importlib.util.spec_from_file_location('gdiff_bench_config', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def set_value(config, key: str, value) -> None:
  node = config
  *parents, leaf = key.split('.')
  for p in parents:
    node = node[p]
  node[leaf] = value


def parse_set(text: str) -> tuple[str, object]:
  key, _, raw = text.partition('=')
  try:
    return key, ast.literal_eval(raw)
  except (ValueError, SyntaxError):
    return key, raw


def _copy_stage(src: str, dst: str, names, stage: str) -> None:
  for name in names:
    if os.path.exists(os.path.join(src, name)) and not os.path.exists(os.path.join(dst, name)):
      shutil.copytree(os.path.join(src, name), os.path.join(dst, name))
  os.makedirs(wd.Layout(dst).stages, exist_ok=True)
  shutil.copy(wd.Layout(src).record(stage), wd.Layout(dst).stages)


def lookup(d: dict, path: str):
  for p in path.split('.'):
    if not isinstance(d, dict) or p not in d:
      return None
    d = d[p]
  return d


def read_point(args, name: str) -> dict:
  """A finished point's record, read back from OUT/runs/<name> without running anything."""
  w = os.path.join(args.out, 'runs', name)
  with open(os.path.join(wd.Layout(w).report, 'metrics.json')) as f:
    metrics = json.load(f)
  with open(os.path.join(w, 'quality_seconds.json')) as f:
    seconds = json.load(f)['seconds']
  train_ov, sample_ov = POINTS[name]
  return {
    'point': name,
    'train': train_ov,
    'sample': sample_ov,
    'seconds': seconds,
    'full_evaluate': name in args.full,
    'metrics': metrics,
  }


def point_config(args, i: int, name: str, base_overrides: dict):
  """The config of sweep point `name` (the `i`-th of this invocation)."""
  train_ov, sample_ov = POINTS[name]
  config = load_config(args.config)
  set_value(config, 'evaluate.holdout', args.holdout)
  for k, v in {**base_overrides, **train_ov, **sample_ov}.items():
    set_value(config, k, v)
  if name not in args.full:
    for k, v in CHEAP_EVALUATE.items():
      set_value(config, k, v)
    if i > 0:
      set_value(config, 'evaluate.baselines', ())
  return config


def reevaluate_point(args, i: int, name: str, base_overrides: dict) -> dict:
  """Re-runs only the evaluate stage of a finished point (after a change of the metrics)."""
  from gdiff.evaluate import run as evaluate_lib

  w = os.path.join(args.out, 'runs', name)
  t0 = time.perf_counter()
  evaluate_lib.evaluate(point_config(args, i, name, base_overrides), w)
  seconds = time.perf_counter() - t0
  timing = os.path.join(w, 'quality_seconds.json')
  with open(timing) as f:
    record = json.load(f)
  record['reevaluate_seconds'] = seconds
  with open(timing, 'w') as f:
    json.dump(record, f)
  logging.info('quality: %s re-evaluated in %.0f s', name, seconds)
  return read_point(args, name)


def run_points(args, base_overrides: dict) -> list[dict]:
  if args.table_only:
    return [read_point(args, name) for name in args.points]
  if args.reevaluate:
    return [reevaluate_point(args, i, name, base_overrides) for i, name in enumerate(args.points)]
  prepared = os.path.join(args.out, 'prepared')
  config = load_config(args.config)
  for k, v in base_overrides.items():
    set_value(config, k, v)
  t0 = time.perf_counter()
  pipeline.run(config, prepared, 'prepare')
  logging.info('quality: prepared in %.0f s', time.perf_counter() - t0)
  trained = {}  # training overrides -> workdir holding that model
  rows = []
  for i, name in enumerate(args.points):
    train_ov, sample_ov = POINTS[name]
    config = point_config(args, i, name, base_overrides)
    w = os.path.join(args.out, 'runs', name)
    os.makedirs(w, exist_ok=True)
    if not os.path.exists(wd.Layout(w).record('prepare')):
      _copy_stage(prepared, w, wd.STAGE_FOLDERS['prepare'], 'prepare')
    key = json.dumps(train_ov, sort_keys=True)
    if key in trained and not os.path.exists(wd.Layout(w).record('train')):
      _copy_stage(trained[key], w, wd.STAGE_FOLDERS['train'], 'train')
    timing = os.path.join(w, 'quality_seconds.json')
    t0 = time.perf_counter()
    pipeline.run(config, w, 'all')
    seconds = time.perf_counter() - t0
    if os.path.exists(timing) and seconds < 30:  # reused a finished run: keep its own time
      with open(timing) as f:
        seconds = json.load(f)['seconds']
    else:
      with open(timing, 'w') as f:
        json.dump({'seconds': seconds}, f)
    trained.setdefault(key, w)
    with open(os.path.join(wd.Layout(w).report, 'metrics.json')) as f:
      metrics = json.load(f)
    rows.append(
      {
        'point': name,
        'train': train_ov,
        'sample': sample_ov,
        'seconds': seconds,
        'full_evaluate': name in args.full,
        'metrics': metrics,
      }
    )
    logging.info('quality: %s done in %.0f s', name, seconds)
  return rows


def holdout(rows: list[dict]) -> str:
  """The held-out split of every point, or 'holdout' when they differ."""
  held = {protocol.held_out(r['metrics']).name for r in rows}
  return held.pop() if len(held) == 1 else 'holdout'


def holdout_line(rows: list[dict]) -> str:
  """Which real split the numbers come from (each point's metrics.json `holdout`)."""
  held = {r['point']: protocol.held_out(r['metrics']).name for r in rows}
  if len(set(held.values())) == 1:
    split = next(iter(held.values()))
    text = f'Held-out split: **{split}** (evaluate.holdout) for every point'
    if split == 'val':
      text += (
        '; the test split was not read: classifier steps chosen on one stratified half '
        'of val, accuracy reported on the other'
      )
  else:
    text = 'Held-out split per point (mixed!): ' + ', '.join(f'{p}={h}' for p, h in held.items())
  return text + '.\n'


def table(rows: list[dict]) -> tuple[list[dict], str]:
  """Flat records (gdiff points, then the baselines and the real reference) and markdown.

  Records and header name the columns with the held-out split (`holdout(rows)`).
  """
  columns = [(protocol.named(c, holdout(rows)), p, fmt) for c, p, fmt in COLUMNS]
  first = next((r for r in rows if len(r['metrics']['methods']) > 1), None)
  baselines = {} if first is None else first['metrics']['methods']
  curve = {name: baselines[name] for _, name in report.curve_rows(baselines)}
  records = []
  for r in rows:
    m = r['metrics']['methods']['gdiff']
    settings = ', '.join(f'{k}={v}' for k, v in {**r['train'], **r['sample']}.items())
    records.append(
      {
        'method': f'gdiff {r["point"]}',
        'settings': settings or 'config default',
        'seconds': round(r['seconds']),
        'vs mosaic': mosaic_text(report.dominance({'gdiff': m, **curve})),
        **{c: lookup(m, p) for c, p, _ in columns},
      }
    )
  if first is not None:
    for name, m in baselines.items():
      if name != 'gdiff':
        records.append(
          {
            'method': name,
            'settings': 'baseline',
            'seconds': None,
            'vs mosaic': '',
            **{c: lookup(m, p) for c, p, _ in columns},
          }
        )
    ref = first['metrics'].get('reference', {}).get('realism', {})
    held = protocol.held_out(first['metrics']).name
    records.append(
      {
        'method': f'real {held} (reference)',
        'settings': '',
        'seconds': None,
        'vs mosaic': '',
        **{
          c: lookup({'realism': ref}, p) if p.startswith('realism') else None for c, p, _ in columns
        },
      }
    )
  header = ['method', 'settings', 's', 'vs mosaic'] + [c for c, _, _ in columns]
  lines = [holdout_line(rows), '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for rec in records:
    cells = [
      rec['method'],
      rec['settings'],
      '' if rec['seconds'] is None else str(rec['seconds']),
      rec['vs mosaic'],
    ]
    for c, _, fmt in columns:
      v = rec[c]
      cells.append('–' if v is None else format(v, fmt))
    lines.append('| ' + ' | '.join(cells) + ' |')
  return records, '\n'.join(lines) + '\n'


def mosaic_text(dom: dict | None) -> str:
  """A table cell from report.dominance: 'yes', or 'no' and the axes lost to the curve."""
  if dom is None:
    return '–'
  if dom['dominates']:
    return 'yes'
  lost = [
    a['name'].replace(' {holdout}', '')
    for a in dom['axes'].values()
    if a['outcome'] in ('loses', None)
  ]
  beyond = ['beyond its private end'] if dom['position'] == 'above' else []
  return 'no: ' + ', '.join(lost + beyond)


def _target(path: str) -> float | None:
  """The one-sided target of a metric path (report.TARGETS), for the dashed lines."""
  return next((t for p, _, op, t in report.TARGETS if p == path and op in ('<=', '>=')), None)


def plot(records: list[dict], path: str, title: str, held: str) -> None:
  """The frontier panels; `held` names the columns' held-out split (as `table` did).

  gdiff points in blue, baselines in red; the mosaic rows (mosaic@<segment SNPs>) as a
  grey curve ordered by the panel's x.
  """
  import matplotlib

  matplotlib.use('Agg')
  from matplotlib import pyplot as plt

  col = {c: (protocol.named(c, held), p) for c, p, _ in COLUMNS}
  fig, axes = plt.subplots(1, 4, figsize=(21, 5))
  # (x, y, where the target region lies). AF r is not drawn: matched decode thresholds
  # make it 1 for every gdiff point.
  panels = (
    ('MIA AUC geno', 'LD r2 corr', 'upper left'),
    ('MIA AUC geno', 'detection AUC', 'lower left'),
    ('MIA AUC emb', 'PCA AUC', 'lower left'),
    ('AA_truth {holdout}', 'AA_syn {holdout}', None),
  )
  for ax, (xc, yc, where) in zip(axes, panels):
    (xc, xpath), (yc, ypath) = col[xc], col[yc]
    curve = []
    for rec in records:
      x, y = rec[xc], rec[yc]
      if x is None or y is None:
        continue
      if rec['method'].startswith(report.CURVE_PREFIX):
        curve.append((x, y, rec['method'][len(report.CURVE_PREFIX) :]))
        continue
      is_gdiff = rec['method'].startswith('gdiff')
      ax.scatter(
        x,
        y,
        marker='o' if is_gdiff else 's',
        s=30 if is_gdiff else 60,
        color='tab:blue' if is_gdiff else 'tab:red',
      )
      ax.annotate(
        rec['method'].replace('gdiff ', ''),
        (x, y),
        fontsize=7,
        xytext=(3, 3),
        textcoords='offset points',
      )
    if curve:  # along membership AUC, as report.dominance reads it; else by segment length
      curve.sort(key=lambda c: c[0] if xpath.endswith('mia_auc') else float(c[2]))
      ax.plot(
        [c[0] for c in curve],
        [c[1] for c in curve],
        '-s',
        color='0.45',
        ms=4,
        label='mosaic (segment SNPs)',
      )
      for x, y, seg in curve:
        ax.annotate(
          seg, (x, y), fontsize=7, xytext=(3, -9), textcoords='offset points', color='0.35'
        )
      ax.legend(fontsize=7)
    if where is not None:
      ax.axvline(_target(xpath), color='grey', ls='--', lw=0.8)
      ax.axhline(_target(ypath), color='grey', ls='--', lw=0.8)
      ax.set_title(f'{yc} vs {xc} (target: {where} of the dashed lines)', fontsize=9)
    else:
      ax.add_patch(plt.Rectangle((0.4, 0.4), 0.2, 0.2, fill=False, ls='--', color='grey'))
      ax.set_title(f'AA_truth vs AA_syn, {held} (target: the dashed box)', fontsize=9)
    ax.set_xlabel(xc)
    ax.set_ylabel(yc)
  fig.suptitle(title + ' — blue: gdiff settings, red: baselines, grey: the mosaic curve')
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default='configs/als.py')
  parser.add_argument('--out', required=True)
  parser.add_argument('--points', default='default,ddim_eta1,guidance1,raw_params,clip3,steps500')
  parser.add_argument('--full', default='', help='points that get the full evaluate')
  parser.add_argument(
    '--set', action='append', default=[], help='KEY=VALUE override for every point (python literal)'
  )
  parser.add_argument(
    '--holdout',
    default='val',
    choices=('val', 'test'),
    help="evaluate.holdout of every point: 'val' while tuning (test unread)",
  )
  parser.add_argument('--title', default='')
  parser.add_argument(
    '--reevaluate',
    action='store_true',
    help='re-run only the evaluate stage of finished points, then the table',
  )
  parser.add_argument(
    '--table_only',
    action='store_true',
    help='only rebuild the table and plot from finished points in OUT/runs',
  )
  args = parser.parse_args()
  args.points = [p for p in args.points.split(',') if p]
  args.full = {p for p in args.full.split(',') if p}
  unknown = [p for p in args.points if p not in POINTS]
  if unknown:
    parser.error(f'unknown points {unknown}; known: {sorted(POINTS)}')
  logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s', datefmt='%H:%M:%S')
  for noisy in ('absl', 'orbax', 'jax'):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  os.makedirs(args.out, exist_ok=True)
  t0 = time.perf_counter()
  rows = run_points(args, dict(parse_set(s) for s in args.set))
  total = time.perf_counter() - t0
  records, md = table(rows)
  if args.table_only or args.reevaluate:
    total = sum(r['seconds'] for r in rows)
  md += f'\nSweep: {len(rows)} points, {total / 60:.1f} min wall clock (`{" ".join(sys.argv)}`).\n'
  with open(os.path.join(args.out, 'table.md'), 'w') as f:
    f.write(md)
  held = '/'.join(sorted({protocol.held_out(r['metrics']).name for r in rows}))
  with open(os.path.join(args.out, 'table.json'), 'w') as f:
    json.dump(
      {'records': records, 'seconds_total': total, 'argv': sys.argv, 'holdout': held}, f, indent=1
    )
  plot(
    records,
    os.path.join(args.out, 'frontier.png'),
    f'{args.title or args.config} (held out: {held})',
    holdout(rows),
  )
  print(md)


if __name__ == '__main__':
  main()
