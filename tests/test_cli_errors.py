"""Bad inputs end `python -m gdiff.main --mode=prepare` with one line and no traceback.

Each case runs the real CLI as a subprocess and checks: exit code != 0, exactly
one stderr line starting `gdiff: error:` that names the file or option, every
other stderr line an absl log line, no traceback, and the workdir unchanged
(a file placed there before survives; no data/ or temporary folder is left).
"""

import os
import re
import subprocess
import sys
from concurrent import futures

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = ['a1', 'a2', 'a3', 'a4', 'a5', 'a6']
_LOG_LINE = re.compile(r'^\d\d:\d\d:\d\d [IWEF] ')  # gdiff.main's log format


def _vcf(path, samples=SAMPLES, rows=None, bad_line=None):
  rng = np.random.default_rng(0)
  lines = ['##fileformat=VCFv4.2',
           '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
           '#' + '\t'.join(['CHROM', 'POS', 'ID', 'REF', 'ALT', 'QUAL', 'FILTER', 'INFO',
                            'FORMAT', *samples])]
  for i in range(12):
    gts = rows(i) if rows else [f'{a}|{b}' for a, b in rng.integers(0, 2, (len(samples), 2))]
    lines.append('\t'.join(['1', str(100 * (i + 1)), f'v{i}', 'A', 'G', '.', '.', '.', 'GT',
                            *gts]))
  if bad_line is not None:
    lines[bad_line] = lines[bad_line].rsplit('\t', 2)[0]  # drop two sample columns
  path.write_text('\n'.join(lines) + '\n')
  return str(path)


def _labels(path, rows, header=('sample', 'label')):
  path.write_text('\n'.join('\t'.join(r) for r in [header, *rows]) + '\n')
  return str(path)


def _cases(d):
  """(name, extra flags, regex the error line must match)."""
  good = _vcf(d / 'good.vcf')
  labels = _labels(d / 'labels.tsv', [(s, 'case' if i < 3 else 'control')
                                      for i, s in enumerate(SAMPLES)])
  return [
      ('missing_vcf', [f'--config.data.vcf={d}/nope.vcf.gz', f'--config.data.labels={labels}'],
       r'data\.vcf: no such file: .*nope\.vcf\.gz'),
      ('no_labels_option', [f'--config.data.vcf={good}'], r'data\.labels: required'),
      ('malformed_line', [f'--config.data.vcf={_vcf(d / "bad.vcf", bad_line=7)}',
                          f'--config.data.labels={labels}'],
       r'bad\.vcf:8: 13 tab-separated fields, expected 15'),
      ('labels_extra_samples',
       [f'--config.data.vcf={good}', '--config.data.labels=' + _labels(
           d / 'extra.tsv', [(s, 'case' if i % 2 else 'control')
                             for i, s in enumerate(SAMPLES + ['x1', 'x2'])])],
       r'extra\.tsv: 2 sample\(s\) not in the genotypes .*good\.vcf: x1, x2'),
      ('labels_missing_samples',
       [f'--config.data.vcf={good}', '--config.data.labels=' + _labels(
           d / 'few.tsv', [(s, 'case' if i % 2 else 'control')
                           for i, s in enumerate(SAMPLES[:4])])],
       r'few\.tsv: 2 sample\(s\) of the genotypes .*good\.vcf are missing here: a5, a6'),
      ('missing_label_column', [f'--config.data.vcf={good}', f'--config.data.labels={labels}',
                                '--config.data.label_column=status'],
       r"labels\.tsv:1: no column 'status'"),
      ('duplicate_samples',
       [f'--config.data.vcf={_vcf(d / "dup.vcf", samples=SAMPLES[:5] + ["a1"])}',
        f'--config.data.labels={labels}'],
       r'dup\.vcf: 1 duplicate sample ID\(s\): a1'),
      ('nothing_after_qc',
       [f'--config.data.vcf={_vcf(d / "mono.vcf", rows=lambda i: ["0|0"] * 6)}',
        f'--config.data.labels={labels}'],
       r'mono\.vcf: no variant left after QC \(12 read, dropped maf 12\)'),
      ('class_too_small',
       [f'--config.data.vcf={good}', '--config.data.labels=' + _labels(
           d / 'small.tsv', [(s, 'case' if i < 5 else 'control') for i, s in enumerate(SAMPLES)])],
       r"class 'control' has 1 sample\(s\), too few to split with data\.val_fraction"),
      ('bad_maf', ['--config.data.qc.min_maf=0.7'], r'data\.qc\.min_maf: must be in'),
  ]


def _run(d, name, flags):
  workdir = d / f'w-{name}'
  workdir.mkdir()
  (workdir / 'keep.txt').write_text('mine')
  proc = subprocess.run(
      [sys.executable, '-m', 'gdiff.main', '--config=configs/als.py', f'--workdir={workdir}',
       '--mode=prepare', *flags], cwd=ROOT, capture_output=True, text=True, timeout=120,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  return workdir, proc


def test_bad_inputs_give_one_line_errors(tmp_path):
  cases = _cases(tmp_path)
  with futures.ThreadPoolExecutor(2) as pool:  # subprocesses; 2 cores
    results = list(pool.map(lambda c: _run(tmp_path, c[0], c[1]), cases))
  failures = []
  for (name, _, pattern), (workdir, proc) in zip(cases, results):
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith('gdiff: error:')]
    others = [x for x in lines if not x.startswith('gdiff: error:') and not _LOG_LINE.match(x)]
    ok = (proc.returncode == 2 and len(errors) == 1 and not others
          and 'Traceback' not in proc.stderr and re.search(pattern, errors[0])
          and sorted(os.listdir(workdir)) == ['keep.txt']
          and (workdir / 'keep.txt').read_text() == 'mine')
    if not ok:
      failures.append(f'{name}: rc={proc.returncode} files={sorted(os.listdir(workdir))}\n'
                      f'{proc.stderr[-2000:]}')
  assert not failures, '\n\n'.join(failures)

