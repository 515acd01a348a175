"""Cost of the pipeline by cohort size: seconds and peak memory of each stage, and a projection.

  .venv/bin/python bench/scale.py --grid=4000x1000,20000x1000 [--workdir=DIR] [--segments=genome]
    [--json=OUT.jsonl] [--project=1000000x100000] [--machines=1,22,100]

For each SNPs x people point of the grid: a kg1 cohort (OutOfAfrica_4J17, four populations,
people/4 each) simulated on ceil(SNPs / 2,000) contigs of 2 Mb thinned to 2,000 SNPs each,
then prepare -> train -> sample -> evaluate, each stage `python -m gdiff.main --mode=STAGE`
in its own subprocess: wall seconds, and its peak resident memory from the kernel's rusage
of that child (`os.wait4`, the per-child form of resource.getrusage(RUSAGE_CHILDREN)),
started from a small interpreter so that no parent's memory is counted (`_MEASURE`).
The ar generator at its defaults (`--segments` sets ar.segments); evaluate is lean (logreg,
one seed, independent + one mosaic baseline, no augmentation curve, no GWAS) so its cost is
the metrics, not classifier training; say so next to the numbers. `uptime` is recorded at
each stage. Prints a markdown table, then seconds per (SNP x person) per stage from a
least-squares line through the grid (t = a + b*S*N) and the projection to `--project` on
each number of machines in `--machines`: train split by segments (one job per segment,
`launch/segments_slurm.sh`); prepare, sample (one process walks the segments in genome
order) and evaluate on one machine. `--from_json=ROWS.jsonl` prints the tables of rows
measured before, without running anything.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ('prepare', 'train', 'sample', 'evaluate')
SPLIT_BY_SEGMENTS = ('train',)  # stages whose work the segment jobs share out
SNPS_PER_CONTIG = 2000
LEAN_EVALUATE = [
  '--config.evaluate.classifiers=("logreg",)',
  '--config.evaluate.seeds=1',
  '--config.evaluate.baselines=("independent","mosaic")',
  '--config.evaluate.mosaic_segment_snps=(100,)',
  '--config.evaluate.augmentation_classifier=',
  '--config.evaluate.genotype_classifiers=("logreg",)',
  '--config.evaluate.gwas=False',
  '--config.evaluate.holdout=val',
]


def _grid(text: str) -> list[tuple[int, int]]:
  out = []
  for item in text.split(','):
    snps, people = item.lower().split('x')
    out.append((int(snps), int(people)))
  return out


def flags(snps: int, people: int, segments: str) -> list[str]:
  """gdiff.main flags of one grid point."""
  contigs = math.ceil(snps / SNPS_PER_CONTIG)
  per_pop = people // 4
  return [
    f'--config={os.path.join(ROOT, "configs", "kg1.py")}',
    f'--config.data.simulate.samples_per_population=({per_pop},{per_pop},{per_pop},{per_pop})',
    f'--config.data.simulate.num_contigs={contigs}',
    f'--config.data.simulate.max_snps_per_contig={math.ceil(snps / contigs)}',
    f'--config.ar.segments={segments}',
    *LEAN_EVALUATE,
  ]


# Runs argv[2:] and writes its peak RSS (KiB) to argv[1]. A child's ru_maxrss also counts the
# memory of the process it was forked from (Linux keeps the larger at exec), so the stage is
# started from this small interpreter, never from a parent that holds a cohort or JAX.
_MEASURE = (
  'import os, subprocess, sys\n'
  'p = subprocess.Popen(sys.argv[2:])\n'
  '_, status, usage = os.wait4(p.pid, 0)\n'
  'open(sys.argv[1], "w").write(str(usage.ru_maxrss))\n'
  'sys.exit(os.waitstatus_to_exitcode(status))\n'
)


def run_stage(cmd: list[str], log_path: str) -> dict:
  """One command in a child process: wall seconds and that child's peak RSS (MiB)."""
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, 'maxrss')
    start = time.perf_counter()
    with open(log_path, 'a') as log:
      proc = subprocess.run(
        [sys.executable, '-c', _MEASURE, out, *cmd],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONPATH=ROOT),
      )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
      raise RuntimeError(f'stage failed (exit {proc.returncode}); see {log_path}')
    with open(out) as f:
      maxrss_kib = int(f.read())
  return {'seconds': seconds, 'peak_rss_mib': maxrss_kib / 1024}  # ru_maxrss: KiB (Linux)


def _uptime() -> str:
  return subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()


def _cohort_size(workdir: str) -> tuple[int, int]:
  """(SNPs, people) the prepare stage kept (a contig may hold fewer sites than asked)."""
  sys.path.insert(0, ROOT)
  from gdiff import workdir as wd
  from gdiff.data import cohort as cohort_lib

  cohort = cohort_lib.load_cohort(wd.Layout(workdir).data)
  return len(cohort.variants().chrom), cohort.num_samples


def measure(snps: int, people: int, base: str, segments: str) -> list[dict]:
  workdir = os.path.join(base, f'{snps}x{people}_{segments}')
  log = f'{workdir}.log'
  args = [*flags(snps, people, segments), f'--workdir={workdir}']
  rows = []
  for stage in STAGES:
    load = _uptime()
    r = run_stage([sys.executable, '-m', 'gdiff.main', *args, f'--mode={stage}'], log)
    if stage == 'prepare':
      snps, people = _cohort_size(workdir)
    row = {'snps': snps, 'people': people, 'segments': segments, 'stage': stage}
    rows.append({**row, **r, 'uptime': load})
    print(json.dumps(rows[-1]), flush=True)
  return rows


def fit_lines(rows: list[dict]) -> dict:
  """stage -> (a, b) of t = a + b * SNPs * people (least squares; b alone with one point)."""
  out = {}
  for stage in STAGES:
    pts = [(r['snps'] * r['people'], r['seconds']) for r in rows if r['stage'] == stage]
    if len(pts) == 1:
      out[stage] = (0.0, pts[0][1] / pts[0][0])
      continue
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    b = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
    out[stage] = (my - b * mx, b)
  return out


def report(rows: list[dict], project: tuple[int, int], machines: list[int]) -> str:
  lines = [
    '| SNPs | people | ar.segments | stage | seconds | peak RSS (MiB) | uptime at start |',
    '|---|---|---|---|---|---|---|',
  ]
  for r in rows:
    load = r['uptime'].split('load average:')[-1].strip()
    lines.append(
      f'| {r["snps"]} | {r["people"]} | {r["segments"]} | {r["stage"]} | {r["seconds"]:.1f} '
      f'| {r["peak_rss_mib"]:.0f} | {load} |'
    )
  lines += ['', '| stage | intercept (s) | seconds per SNP x person |', '|---|---|---|']
  lines_fit = fit_lines(rows)
  for stage, (a, b) in lines_fit.items():
    lines.append(f'| {stage} | {a:.1f} | {b:.3g} |')
  s, n = project
  lines += [
    '',
    f'Projection to {s} SNPs x {n} people (hours; train split over machines by segments, '
    'the other stages on one):',
    '',
    '| machines | ' + ' | '.join(STAGES) + ' | total |',
    '|---|' + '---|' * (len(STAGES) + 1),
  ]
  for m in machines:
    hours = []
    for stage in STAGES:
      a, b = lines_fit[stage]
      split = m if stage in SPLIT_BY_SEGMENTS else 1
      hours.append((a + b * s * n / split) / 3600)
    lines.append(f'| {m} | ' + ' | '.join(f'{h:.2f}' for h in hours) + f' | {sum(hours):.2f} |')
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--grid', default='4000x1000,20000x1000', help='SNPSxPEOPLE,...')
  parser.add_argument('--workdir', default='', help='keeps the workdirs here (default: temp)')
  parser.add_argument('--segments', default='genome', help='ar.segments of every run')
  parser.add_argument('--json', default='', help='also append one JSON line per stage here')
  parser.add_argument('--project', default='1000000x100000', help='SNPSxPEOPLE to project to')
  parser.add_argument('--machines', default='1,22,100', help='machine counts of the projection')
  parser.add_argument('--from_json', default='', help='report these rows; run nothing')
  args = parser.parse_args()
  project = _grid(args.project)[0], [int(m) for m in args.machines.split(',')]
  if args.from_json:
    with open(args.from_json) as f:
      print(report([json.loads(line) for line in f if line.strip()], *project))
    return
  base = args.workdir or tempfile.mkdtemp(prefix='gdiff_scale_')
  rows = []
  for snps, people in _grid(args.grid):
    rows += measure(snps, people, base, args.segments)
    if args.json:
      with open(args.json, 'a') as f:
        f.writelines(json.dumps(r) + '\n' for r in rows[-len(STAGES) :])
  print(report(rows, *project))


if __name__ == '__main__':
  main()
