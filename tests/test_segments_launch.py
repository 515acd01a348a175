"""Segment jobs (gdiff.segments) and their runners (launch/segments_local.sh, segments_slurm.sh).

A tiny cohort of 3 chromosomes and 4 populations, cut by chromosome: the CLI lists and fits
one segment and skips it the second time; the local runner in 2 processes survives a failed
segment job (GDIFF_FAIL_SEGMENT) and its re-run fits only that one; the SLURM script's dry
run stops before the dependent job when an array task fails, and its re-run fits only that
segment and goes end to end to a synthetic VCF and a report with the genome-wide checks.
"""

import json
import os
import subprocess
import sys

import pytest

from gdiff import segments as segments_cli
from gdiff.ar import segments

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ['chr1', 'chr2', 'chr3']
TINY = [
  f'--config={os.path.join(ROOT, "configs", "kg1.py")}',
  '--config.data.simulate.samples_per_population=(6, 6, 6, 6)',
  '--config.data.simulate.num_contigs=3',
  '--config.data.simulate.contig_length=200000',
  '--config.data.simulate.max_snps_per_contig=16',
  '--config.ar.context_snps=(2,)',
  '--config.ar.max_iter=5',
  '--config.ar.block_snps=16',
  '--config.ar.segments=chromosome',
  '--config.evaluate.classifiers=("logreg",)',
  '--config.evaluate.seeds=1',
  '--config.evaluate.classifier_steps=5',
  '--config.evaluate.baselines=("independent",)',
  '--config.evaluate.augmentation_classifier=',
  '--config.evaluate.mosaic_segment_snps=(4,)',
  '--config.evaluate.genotype_classifiers=()',
  '--config.evaluate.gwas=False',
]


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
  """One compilation cache for every job of this module, for every compile however short:
  the segment jobs compile the same programs (equal shapes), and most of their time is that."""
  return str(tmp_path_factory.mktemp('jax_cache'))


def _env(cache, **extra):
  env = dict(
    os.environ,
    JAX_PLATFORMS='cpu',
    PYTHONPATH=ROOT,
    PYTHON=sys.executable,
    JAX_COMPILATION_CACHE_DIR=cache,
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
  )
  env.pop(segments.FAIL_ENV, None)
  return {**env, **extra}


def _run(cmd, cache, **env):
  return subprocess.run(
    cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, env=_env(cache, **env)
  )


def _seg(w, name):
  return os.path.join(w, 'checkpoints', 'ar', 'segments', name, 'fit.json')


def _done(w):
  return [n for n in NAMES if os.path.exists(_seg(w, n))]


def test_cli_lists_fits_one_segment_and_skips_it_the_second_time(tmp_path, cache):
  w = str(tmp_path / 'w')
  args = [*TINY, f'--workdir={w}']
  assert _run([sys.executable, '-m', 'gdiff.main', *args, '--mode=prepare'], cache).returncode == 0
  listing = _run([sys.executable, '-m', 'gdiff.segments', *args, '--list'], cache)
  assert listing.returncode == 0, listing.stderr[-2000:]
  assert listing.stdout.split() == NAMES  # stdout holds only the names
  with open(os.path.join(w, 'checkpoints', 'ar', 'segments.txt')) as f:
    assert f.read().split() == NAMES
  first = _run([sys.executable, '-m', 'gdiff.segments', *args, '--index=1'], cache)
  assert first.returncode == 0, first.stderr[-2000:]
  assert 'fitting segment chr2' in first.stderr and _done(w) == ['chr2']
  mtime = os.stat(_seg(w, 'chr2')).st_mtime_ns
  again = _run([sys.executable, '-m', 'gdiff.segments', *args, '--segment=chr2'], cache)
  assert again.returncode == 0 and 'segment chr2 already done; skipping' in again.stderr
  assert 'fitting' not in again.stderr and os.stat(_seg(w, 'chr2')).st_mtime_ns == mtime
  bad = _run([sys.executable, '-m', 'gdiff.segments', *args, '--index=3'], cache)
  assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
    'gdiff: error: --index=3: the plan has 3 segments (0..2)'
  ]
  assert _done(w) == ['chr2']


def test_local_runner_resumes_a_failed_segment_without_refitting_the_others(tmp_path, cache):
  w = str(tmp_path / 'w')
  cmd = ['bash', 'launch/segments_local.sh', '2', *TINY, f'--workdir={w}']
  failed = _run(cmd, cache, **{segments.FAIL_ENV: 'chr2'})
  assert failed.returncode != 0
  assert 'injected failure of segment chr2' in failed.stderr
  assert _done(w) == ['chr1', 'chr3']  # the other jobs ran to the end and were recorded
  assert not os.path.exists(os.path.join(w, 'stages', 'train.json'))
  mtimes = {n: os.stat(_seg(w, n)).st_mtime_ns for n in ('chr1', 'chr3')}
  resumed = _run(cmd, cache)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  log = resumed.stdout + resumed.stderr
  assert log.count('ar: fitting segment') == 1 and 'fitting segment chr2' in log
  for n in ('chr1', 'chr3'):
    assert f'segment {n} already done; skipping' in log
    assert os.stat(_seg(w, n)).st_mtime_ns == mtimes[n]  # not rewritten
  assert _done(w) == NAMES
  with open(os.path.join(w, 'checkpoints', 'ar', 'fit.json')) as f:
    assert [s['name'] for s in json.load(f)['segments']] == NAMES
  for name in ('train', 'sample', 'evaluate'):
    assert os.path.exists(os.path.join(w, 'stages', f'{name}.json'))
  assert os.path.exists(os.path.join(w, 'samples', 'synthetic.vcf.gz'))


def test_slurm_dry_run_goes_end_to_end(tmp_path, cache):
  w = str(tmp_path / 'w')
  extra = ['--config.ar.ancestry_pcs=2']  # the shared code is fit once, by the plan job
  cmd = ['bash', 'launch/segments_slurm.sh', '--dry-run', *TINY, *extra, f'--workdir={w}']
  # A failed array task: the others still run, the dependent job never starts.
  failed = _run(cmd, cache, **{segments.FAIL_ENV: 'chr1'})
  assert failed.returncode != 0 and _done(w) == ['chr2', 'chr3']
  assert not [line for line in failed.stderr.splitlines() if 'gdiff-rest' in line]
  proc = _run(cmd, cache)
  assert proc.returncode == 0, proc.stderr[-3000:]
  sbatch = [line for line in proc.stderr.splitlines() if line.startswith('sbatch ')]
  assert len(sbatch) == 3
  assert '--wait' in sbatch[0] and '--list' in sbatch[0]
  assert '--array=0-2' in sbatch[1] and 'SLURM_ARRAY_TASK_ID' in sbatch[1]
  assert '--dependency=afterok:dry-segment' in sbatch[2] and '--mode=all' in sbatch[2]
  assert 'segments: 3' in proc.stdout
  assert proc.stderr.count('ar: fitting segment') == 1 and 'fitting segment chr1' in proc.stderr
  assert os.path.exists(os.path.join(w, 'checkpoints', 'ar', 'ancestry.npz'))
  vcf = os.path.join(w, 'samples', 'synthetic.vcf.gz')
  chroms = subprocess.run(
    ['bcftools', 'query', '-f', '%CHROM\n', vcf], capture_output=True, text=True, check=True
  ).stdout.split()
  assert sorted(set(chroms)) == ['1', '2', '3'] and len(chroms) == 48
  with open(os.path.join(w, 'report', 'metrics.json')) as f:
    metrics = json.load(f)
  for row in (metrics['methods']['gdiff'], metrics['methods']['independent']):
    assert set(row['realism']['genome']) >= {'r_mean', 'abs_r_mean', 'pc1_agreement'}
  assert 'genome_train' in metrics['reference']['realism']
  with open(os.path.join(w, 'report', 'report.md')) as f:
    md = f.read()
  assert '### Genome-wide checks' in md and '| real train |' in md


def test_segments_cli_refuses_the_genome_plan(tmp_path):
  from configs import kg1

  c = kg1.get_config()
  with pytest.raises(Exception, match="ar.segments='genome'"):
    segments_cli.run_job(c, str(tmp_path / 'w'), listing=True)
