"""Benchmark of VCF.gz ingest: serial vs worker processes, peak memory, bcftools floor.

  python bench/ingest.py            # 1000, 2000, 4000 samples x 20,000 SNPs; serial and 2 workers
  python bench/ingest.py --sizes 2000x20000,2000x40000 --workers 0,2 --repeat 2
  python bench/ingest.py --checkouts OTHER,. --workers 0 --repeat 3   # two versions side by side

For each size it simulates a cohort once (stdpopsim OutOfAfrica_4J17, four
populations, cached under --cache), then for each entry of --workers
  ingest  runs `gdiff.data.ingest_parallel.ingest` (defaults of configs/base.py:
          QC, HWE within class, shards; `workers` 0 = the serial path) in a
          fresh child process; wall time measured there and includes, for the
          parallel path, making the index (none sits next to the cached file),
          the positions pass and the worker start-up. Memory is the child's
          resident-set high-water mark, VmHWM of /proc/self/status: `base` after
          the imports, then the mark is reset (clear_refs 5) and `peak` is read
          after ingest. (ru_maxrss would be simpler, but Linux keeps it across
          exec, so the child would inherit the parent's peak from the
          simulation.) With workers, each worker process reports its own VmHWM;
          the table gives the sum over the parent and the workers (an upper
          bound: pages shared with the forkserver count once per process) and
          the largest single process.
  floor   `bcftools view -Ou FILE > /dev/null` (decompress + parse in C, one core).
Throughput is genotypes (variants x samples) per second. With --repeat R the
fastest of R runs is shown. Timings are noisy on a shared machine; run it
alone for numbers you will quote.

--readers times the VCF reader alone (no QC, no shards) as ingest uses it,
scikit-allel (`gdiff.data.vcf.VcfSource.chunks`: line checks, GT text decoded)
against cyvcf2 (htslib; `genotype.array()` per record into the same dosage and
first-haplotype arrays; and its `gt_types` ALT counts alone, a lower bound),
interleaved in this process, best of --repeat; it checks that all give the same
dosages and prints the ratios (cyvcf2 is not a gdiff dependency: pip install it):

  python bench/ingest.py --readers --sizes 2000x10000 --repeat 3

--checkouts runs the same cells with each listed gdiff checkout (its own
bench/ingest.py child, gdiff and configs), runs interleaved, so that two
versions are compared under the same load; `vs first` is the first
checkout's time over this row's (above 1: faster).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def make_cohort(samples: int, snps: int, cache: str) -> tuple[str, str]:
  """Simulates (or reuses) a cohort of `samples` x `snps`; returns (vcf, labels)."""
  from configs import base
  from gdiff.data import simulate, writers

  folder = os.path.join(cache, f'{samples}x{snps}')
  vcf = os.path.join(folder, simulate.VCF_FILE)
  labels = os.path.join(folder, simulate.LABELS_FILE)
  if os.path.exists(vcf) and os.path.exists(labels):
    return vcf, labels
  s = base.get_config().data.simulate
  per_pop = samples // 4
  s.samples_per_population = (per_pop, per_pop, per_pop, samples - 3 * per_pop)
  s.contig_length = 2_000_000
  s.max_snps_per_contig = 2500
  s.min_maf = 0.02
  s.num_contigs = math.ceil(snps / 2000) + 1
  cohort = simulate.simulate(s)
  left, contigs = snps, []
  for c in cohort.contigs:
    k = min(left, len(c.pos))
    contigs.append(
      simulate.Contig(c.name, c.length, c.pos[:k], c.ref[:k], c.alt[:k], c.haplotypes_Sx2N[:k])
    )
    left -= k
  if left:
    raise SystemExit(f'simulated only {snps - left} SNPs; raise num_contigs')
  os.makedirs(folder, exist_ok=True)
  simulate.write_contigs(vcf, cohort.samples, [c for c in contigs if len(c.pos)])
  writers.write_labels(labels, cohort.samples, cohort.labels)
  return vcf, labels


def _rss_kb(field: str) -> float:
  """VmRSS / VmHWM of this process in KiB (ru_maxrss where /proc is missing)."""
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith(field + ':'):
          return float(line.split()[1])
  except OSError:
    pass
  return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _cpu_s() -> float:
  """CPU seconds of this process and its finished children (bcftools, tabix)."""
  return sum(
    r.ru_utime + r.ru_stime
    for r in (
      resource.getrusage(resource.RUSAGE_SELF),
      resource.getrusage(resource.RUSAGE_CHILDREN),
    )
  )


def _reset_peak() -> None:
  try:
    with open('/proc/self/clear_refs', 'w') as f:
      f.write('5')  # resets VmHWM to the current RSS (Linux >= 4.0)
  except OSError:
    pass


def child(vcf: str, labels: str, out: str, workers: int) -> None:
  """Runs ingest alone and prints JSON (wall time, memory) on stdout."""
  import numpy as np

  from configs import base
  from gdiff.data import ingest_parallel, sources, splits

  d = base.get_config().data
  source = sources.open_source('vcf', vcf)
  label_N = splits.read_labels(labels, 'label', source.samples, vcf)
  groups = np.unique(label_N, return_inverse=True)[1]
  import allel  # noqa: F401  (count the import in the base, not in ingest)

  base_kb = _rss_kb('VmRSS')
  _reset_peak()
  cpu0 = _cpu_s()
  start = time.perf_counter()
  stats = ingest_parallel.ingest(
    source,
    out,
    d.chunk_variants,
    d.shard_variants,
    d.qc,
    groups,
    workers=workers,
    regions_per_worker=d.ingest_regions_per_worker,
  )
  wall = time.perf_counter() - start
  cpu = _cpu_s() - cpu0
  peak_mib = _rss_kb('VmHWM') / 1024
  info = stats['ingest_parallel']
  worker_mib = info['worker_peak_rss_mib'] if info else []
  worker_cpu = info['worker_cpu_s'] if info else []
  print(
    json.dumps(
      {
        'wall_s': wall,
        'base_mib': base_kb / 1024,
        'peak_mib': peak_mib,
        'sum_peak_mib': peak_mib + sum(worker_mib),
        'max_peak_mib': max([peak_mib] + worker_mib),
        'pieces': info['pieces'] if info else 1,
        'cpu_s': cpu + sum(worker_cpu),
        'busiest_cpu_s': max([cpu] + worker_cpu),
        'read': stats['variants_read'],
        'kept': stats['variants_kept'],
        'samples': int(len(source.samples)),
      }
    )
  )


def _run_child(vcf: str, labels: str, workers: int, checkout: str = ROOT) -> dict:
  out = tempfile.mkdtemp(prefix='gdiff-bench-ingest-')
  script = os.path.join(os.path.abspath(checkout), 'bench', 'ingest.py')
  try:
    proc = subprocess.run(
      [sys.executable, script, '--child', vcf, labels, out, str(workers)],
      capture_output=True,
      text=True,
      check=False,
      cwd=os.path.abspath(checkout),
    )  # workers import from the cwd too
    if proc.returncode:
      raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])
  finally:
    shutil.rmtree(out, ignore_errors=True)


def bench(
  samples: int,
  snps: int,
  cache: str,
  workers: list[int],
  repeat: int,
  checkouts: list[str] = (ROOT,),
) -> dict:
  vcf, labels = make_cohort(samples, snps, cache)
  runs = {}
  for w in workers:
    tries = {c: [] for c in checkouts}
    for _ in range(repeat):  # interleaved: the checkouts share the machine's load
      for c in checkouts:
        tries[c].append(_run_child(vcf, labels, w, c))
    for c in checkouts:
      runs[(c, w)] = min(tries[c], key=lambda r: r['wall_s'])
  floor = None
  if shutil.which('bcftools'):
    times = []
    for _ in range(repeat):
      t = time.perf_counter()
      subprocess.run(f'bcftools view -Ou {vcf} > /dev/null', shell=True, check=True)
      times.append(time.perf_counter() - t)
    floor = min(times)
  first = runs[(checkouts[0], workers[0])]
  return {
    'size': f'{samples}x{snps}',
    'file_mib': os.path.getsize(vcf) / 2**20,
    'runs': runs,
    'genotypes': first['read'] * first['samples'],
    'kept': first['kept'],
    'bcftools_s': floor,
  }


def _read_allel(vcf: str) -> tuple[np.ndarray, np.ndarray]:
  from gdiff.data import vcf as vcf_lib

  chunks = list(vcf_lib.VcfSource(vcf).chunks(5000))
  return (
    np.concatenate([c.dosage_SxN for c in chunks]),
    np.concatenate([c.hap0_SxN for c in chunks]),
  )


def _read_cyvcf2(vcf: str) -> tuple[np.ndarray, np.ndarray]:
  import cyvcf2

  reader = cyvcf2.VCF(vcf, lazy=True, threads=1)
  dosage, hap0 = [], []
  for record in reader:
    gt = record.genotype.array()  # (N, 3) int16: allele, allele, phased; < 0 missing
    missing = (gt[:, 0] < 0) | (gt[:, 1] < 0)
    d = (gt[:, 0] == 1).astype(np.int8) + (gt[:, 1] == 1)
    d[missing] = -1
    dosage.append(d)
    hap0.append(np.where(missing, 0, gt[:, 0] == 1).astype(np.int8))
  reader.close()
  return np.stack(dosage), np.stack(hap0)


def _read_cyvcf2_dosage(vcf: str) -> tuple[np.ndarray, None]:
  """cyvcf2's fastest path, ALT counts only (`gt_types`, no phase): a lower bound on its time."""
  import cyvcf2

  reader = cyvcf2.VCF(vcf, gts012=True, lazy=True, threads=1)
  dosage = [record.gt_types.astype(np.int8) for record in reader]  # 0, 1, 2; 3 unknown
  reader.close()
  dosage = np.stack(dosage)
  dosage[dosage == 3] = -1
  return dosage, None


READERS = {
  'scikit-allel': _read_allel,
  'cyvcf2': _read_cyvcf2,
  'cyvcf2 dosage only': _read_cyvcf2_dosage,
}


def bench_readers(samples: int, snps: int, cache: str, repeat: int) -> None:
  """Prints the best wall time of each VCF reader on one cohort, and their ratio."""
  try:
    import cyvcf2  # noqa: F401  (not a gdiff dependency: docs/decisions.md#vcf-reader)
  except ImportError:
    raise SystemExit('--readers needs cyvcf2: pip install cyvcf2') from None
  vcf, _ = make_cohort(samples, snps, cache)
  times = {name: [] for name in READERS}
  outputs = {}
  for _ in range(repeat):
    for name, read in READERS.items():  # interleaved: both see the same load
      start = time.perf_counter()
      outputs[name] = read(vcf)
      times[name].append(time.perf_counter() - start)
  reference = outputs['scikit-allel']
  same = {
    name: all(b is None or np.array_equal(a, b) for a, b in zip(reference, out))
    for name, out in outputs.items()
  }
  best = {name: min(t) for name, t in times.items()}
  genotypes = outputs['scikit-allel'][0].size
  for name, t in best.items():
    print(
      f'| {samples}x{snps} | {name} | {t:.2f} | {genotypes / t / 1e6:.1f} | '
      f'{best["scikit-allel"] / t:.2f}x | {same[name]} |',
      flush=True,
    )


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument(
    '--sizes', default='1000x20000,2000x20000,4000x20000', help='comma-separated SAMPLESxSNPS list'
  )
  parser.add_argument(
    '--workers', default='0,2', help='comma-separated data.ingest_workers values (0 = serial)'
  )
  parser.add_argument('--repeat', type=int, default=1, help='runs per cell; the fastest is shown')
  parser.add_argument('--cache', default=os.path.join(tempfile.gettempdir(), 'gdiff-bench'))
  parser.add_argument(
    '--checkouts',
    default=ROOT,
    help='comma-separated gdiff checkouts to compare (default: this one)',
  )
  parser.add_argument(
    '--readers', action='store_true', help='time the VCF readers alone (scikit-allel, cyvcf2)'
  )
  parser.add_argument(
    '--child', nargs=4, metavar=('VCF', 'LABELS', 'OUT', 'WORKERS'), help=argparse.SUPPRESS
  )
  args = parser.parse_args()
  if args.child:
    child(*args.child[:3], int(args.child[3]))
    return
  sizes = [tuple(map(int, s.split('x'))) for s in args.sizes.split(',')]
  workers = [int(w) for w in args.workers.split(',')]
  checkouts = args.checkouts.split(',')
  print(f'load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores', flush=True)
  if args.readers:
    print('| size (N x S) | reader | read s | Mgeno/s | vs scikit-allel | same output |')
    print('|---|---|---|---|---|---|')
    for samples, snps in sizes:
      bench_readers(samples, snps, args.cache, args.repeat)
    print(f'load average after: {os.getloadavg()[0]:.2f}')
    return
  cols = [
    'size (N x S)',
    'file MiB',
    'workers',
    'ingest s',
    'Mgeno/s',
    'vs serial',
    'CPU s (all / busiest process)',
    'peak MiB (sum / max process)',
    'pieces',
    'bcftools view s',
    'kept',
  ]
  if len(checkouts) > 1:
    cols = ['checkout', *cols, 'vs first']
  print('| ' + ' | '.join(cols) + ' |')
  print('|' + '---|' * len(cols))
  for samples, snps in sizes:
    r = bench(samples, snps, args.cache, workers, args.repeat, checkouts)
    floor = f'{r["bcftools_s"]:.2f}' if r['bcftools_s'] else 'n/a'
    for (c, w), run in r['runs'].items():
      base_s = r['runs'][(c, workers[0])]['wall_s']
      peak = (
        f'{run["peak_mib"]:.0f}'
        if run['pieces'] == 1 and w <= 1
        else f'{run["sum_peak_mib"]:.0f} / {run["max_peak_mib"]:.0f}'
      )
      row = (
        f'| {r["size"]} | {r["file_mib"]:.1f} | {w} | {run["wall_s"]:.2f} | '
        f'{r["genotypes"] / run["wall_s"] / 1e6:.1f} | {base_s / run["wall_s"]:.2f}x | '
        f'{run["cpu_s"]:.2f} / {run["busiest_cpu_s"]:.2f} | '
        f'{peak} | {run["pieces"]} | {floor} | {run["kept"]} |'
      )
      if len(checkouts) > 1:
        first = r['runs'][(checkouts[0], w)]['wall_s']
        row = f'| {c} {row} {first / run["wall_s"]:.2f}x |'
      print(row, flush=True)
  print(f'load average after: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
  main()
