"""Ingest over genomic regions in worker processes (`data.ingest_workers`).

The file is cut into about `regions_per_worker` x workers pieces of consecutive
records with about equal record counts; each worker process streams its piece
through the same QC and shard writer as the serial path
(`gdiff.data.ingest.ingest_chunks`) into a scratch folder, and the parent
renames the pieces' shards into one genome-ordered sequence and sums their
statistics. Dosages, first haplotypes (`hap0`), the variant table and the
manifest counts (phase included: `phased` holds when it holds in every piece)
are identical to `gdiff.data.ingest.ingest`; only the shard boundaries differ
(each piece ends with a partial shard).

Why the result is the same: every per-variant filter (call rate, MAF, HWE per
sample group) sees the same calls whichever chunk a variant is in, and pieces
are cut only between records at different (chromosome, position), so records
that the duplicate filter compares (consecutive biallelic SNPs at one
position) always fall in one piece.

How pieces are read:
  VCF.gz  `tabix -h FILE REGION` per contig segment of the piece; scikit-allel
          keeps only records whose POS is in the region (tabix also returns
          records that merely overlap it).
  BCF     `bcftools view -Ov -r REGION`, then the same.
  PLINK   the .bed rows of the piece's variant index range (PGEN: the same).
Several files (`gdiff.data.sources.MultiSource`) are planned file by file, the
pieces shared equally among them; a piece never spans two files, and a
chromosome that continues from one file into another is ingested serially.
The VCF index is FILE.tbi or FILE.csi when present and not older than FILE;
otherwise one is made with `bcftools index` in a scratch folder inside the
output folder (never next to the input). Positions come from one
`bcftools query` pass over CHROM and POS (no genotypes decoded; about 8 bytes
per record in memory). Each piece's record count is checked against that pass.
scikit-allel 1.3's own `iter_vcf_chunks(path, region=...)` is not used for
reading: it waits 0.5 s per region after starting tabix, falls back with only
a warning to scanning the whole file when tabix fails, and cannot take an
index kept elsewhere; the tabix stream goes through the same line checks as
the serial path instead.

Serial ingest is used instead, with one logging line saying why, for a plain
(not bgzipped) VCF, when bcftools or tabix is missing, when no index can be
made, when the positions pass shows an unsorted file (serial ingest then
reports where), for a contig name with ':' (ambiguous in a region string), or
when there is one piece only.

Memory: each worker holds one chunk and one shard buffer, as the serial path
(see `configs/base.py` `data.chunk_variants`), so the total is about workers x
the serial peak, plus the positions in the parent.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import itertools
import logging
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import types

import numpy as np
import tqdm

from gdiff.data import cohort as cohort_lib
from gdiff.data import genotypes
from gdiff.data import ingest as ingest_lib
from gdiff.data import qc as qc_lib
from gdiff.data import vcf as vcf_lib
from gdiff.errors import InputError

# forkserver: workers fork from a clean server (the parent may hold JAX threads,
# which plain fork is unsafe with) and skip re-importing the preloaded modules.
START_METHOD = 'forkserver' if 'forkserver' in multiprocessing.get_all_start_methods() else 'spawn'
_PRELOAD = ['gdiff.data.ingest_parallel', 'gdiff.data.sources', 'allel', 'bed_reader', 'pgenlib']
_BGZF_MAGIC = b'\x1f\x8b\x08\x04'
_SCAN_BLOCK = 1 << 23  # bytes of `bcftools query` output parsed at once
_BLAS_THREADS = ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS')


@dataclasses.dataclass(frozen=True)
class Piece:
  """One worker task: the records [start, stop) of the file, in file order."""

  index: int
  start: int
  stop: int
  regions: tuple[str, ...] = ()  # 'CHROM:BEG-END' per contig segment (VCF only)


@dataclasses.dataclass(frozen=True)
class Positions:
  """CHROM and POS of every record, as run-length contigs plus positions."""

  contigs: tuple[str, ...]  # in file order, each once
  starts: np.ndarray  # (len(contigs) + 1,) int64 first record of each contig; last = V
  pos_V: np.ndarray  # (V,) int64

  @classmethod
  def from_records(cls, chrom_V: np.ndarray, pos_V: np.ndarray) -> Positions | None:
    """None when the records are not sorted (positions, contiguous contigs)."""
    chrom_V = np.asarray(chrom_V).astype(str)
    change = np.flatnonzero(chrom_V[1:] != chrom_V[:-1]) + 1
    starts = np.concatenate([[0], change, [len(chrom_V)]]).astype(np.int64)
    contigs = tuple(str(chrom_V[i]) for i in starts[:-1])
    positions = cls(contigs, starts, np.asarray(pos_V, np.int64))
    return positions if positions.is_sorted() else None

  def is_sorted(self) -> bool:
    if len(set(self.contigs)) != len(self.contigs):
      return False
    step = np.diff(self.pos_V) < 0
    step[self.starts[1:-1] - 1] = False  # a new contig may start anywhere
    return not step.any()

  def __len__(self) -> int:
    return len(self.pos_V)


def resolve_workers(workers: int) -> int:
  """`data.ingest_workers` as a process count: 0 serial, -1 all usable cores."""
  if workers == -1:
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
  return workers


def plan_cuts(positions: Positions, num_pieces: int) -> list[int]:
  """Cut points 0 = c_0 < ... < c_k = V into about equal pieces (k <= num_pieces).

  A cut lies only between records at different (chromosome, position): a cut
  that would split records at one position moves forward past them.
  """
  num = len(positions)
  pos, contig_start = positions.pos_V, set(positions.starts.tolist())
  cuts = [0]
  for k in range(1, max(1, num_pieces)):
    c = max(round(k * num / num_pieces), cuts[-1] + 1)
    while c < num and c not in contig_start and pos[c] == pos[c - 1]:
      c += 1
    if c < num:
      cuts.append(c)
  if num:
    cuts.append(num)
  return cuts


def vcf_pieces(positions: Positions, cuts: list[int]) -> list[Piece]:
  """Pieces with one tabix region per contig segment (POS range of its records)."""
  pieces = []
  for index, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])):
    regions = []
    for name, cs, ce in zip(positions.contigs, positions.starts[:-1], positions.starts[1:]):
      lo, hi = max(a, cs), min(b, ce)
      if lo < hi:
        regions.append(f'{name}:{positions.pos_V[lo]}-{positions.pos_V[hi - 1]}')
    pieces.append(Piece(index, a, b, tuple(regions)))
  return pieces


def scan_positions(path: str) -> Positions | None:
  """CHROM/POS of every record with one `bcftools query` pass; None if it fails or unsorted."""
  proc = subprocess.Popen(
    ['bcftools', 'query', '-f', '%CHROM\t%POS\n', path],
    stdout=subprocess.PIPE,
    stderr=subprocess.DEVNULL,
  )
  contigs, starts, pos_parts, count, tail, last = [], [], [], 0, b'', None
  with proc.stdout:
    while True:
      block = proc.stdout.read(_SCAN_BLOCK)
      text = tail + block
      cut = text.rfind(b'\n') + 1 if block else len(text)
      text, tail = text[:cut], text[cut:]
      fields = text.split()
      if len(fields) % 2:
        proc.kill()
        proc.wait()
        return None
      chrom = np.array(fields[0::2])
      for i in np.flatnonzero(np.concatenate([[len(chrom) > 0], chrom[1:] != chrom[:-1]])):
        if chrom[i] != last:
          last = chrom[i]
          contigs.append(last.decode())
          starts.append(count + i)
      pos_parts.append(np.array(fields[1::2]).astype(np.int64))
      count += len(chrom)
      if not block:
        break
  if proc.wait() != 0:
    return None
  positions = Positions(
    tuple(contigs),
    np.array(starts + [count], np.int64),
    np.concatenate(pos_parts) if pos_parts else np.zeros(0, np.int64),
  )
  return positions if positions.is_sorted() else None


def _is_bgzf(path: str) -> bool:
  with open(path, 'rb') as f:
    head = f.read(16)
  return head[:4] == _BGZF_MAGIC and head[12:14] == b'BC'


def find_or_make_index(
  source: vcf_lib.VcfSource, scratch: str, wait: bool = True
) -> tuple[str | None, str, subprocess.Popen | None]:
  """(index path, '', process) or (None, why not, None).

  Uses FILE.tbi/.csi when present and not older than FILE; otherwise starts
  `bcftools index` into `scratch` (the process is returned still running when
  `wait` is False: call `wait_index` before using the index).
  """
  path = source.path
  tools = ['bcftools'] if source.bcf else ['bcftools', 'tabix']
  missing = [t for t in tools if shutil.which(t) is None]
  if missing:
    return None, f'{" and ".join(missing)} not on PATH', None
  if not source.bcf and not _is_bgzf(path):
    return None, 'not a bgzipped VCF (compress it with bgzip for parallel ingest)', None
  for ext in ('.csi',) if source.bcf else ('.tbi', '.csi'):
    index = path + ext
    if os.path.isfile(index) and os.path.getmtime(index) >= os.path.getmtime(path):
      return index, '', None
  index = os.path.join(scratch, 'index.csi')
  proc = subprocess.Popen(
    ['bcftools', 'index', '-o', index, path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
  )
  if wait:
    why = wait_index(proc)
    return (None, why, None) if why else (index, '', None)
  return index, '', proc


def wait_index(proc: subprocess.Popen | None) -> str:
  """Waits for `bcftools index`; '' when it worked, else why not."""
  if proc is None:
    return ''
  _, err = proc.communicate()
  if proc.returncode:
    lines = err.decode(errors='replace').strip().splitlines()
    return f'cannot index it: {lines[0] if lines else proc.returncode}'
  return ''


def _plan_one(
  source, scratch: str, num_pieces: int, on_ready
) -> tuple[list[Piece] | None, str, str | None, tuple[str, ...]]:
  """(pieces, '', index, contigs) of one file or fileset, or (None, why serial, None, ())."""
  if getattr(source, 'sliceable', False):  # PLINK, PGEN: by variant index
    genotypes.check_contig_names(dict.fromkeys(source.chrom.tolist()), source.path)
    positions = Positions.from_records(source.chrom, source.pos)
    if positions is None:
      return None, 'variants not sorted', None, ()
    cuts = plan_cuts(positions, num_pieces)
    on_ready()
    pieces = [Piece(k, a, b) for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:]))]
    return pieces, '', None, positions.contigs
  index, why, proc = find_or_make_index(source, scratch, wait=False)
  if index is None:
    return None, why, None, ()
  on_ready()
  positions = scan_positions(source.path)  # while the index is being made
  why = wait_index(proc)
  if why:
    return None, why, None, ()
  if positions is None:
    return None, 'bcftools query failed or the records are not sorted', None, ()
  genotypes.check_contig_names(positions.contigs, source.path)
  if any(':' in c for c in positions.contigs):
    return None, 'a contig name contains ":"', None, ()
  pieces = vcf_pieces(positions, plan_cuts(positions, num_pieces))
  return pieces, '', index, positions.contigs


def _plan(
  source, scratch: str, num_pieces: int, on_ready
) -> tuple[list[tuple[object, Piece, str | None]] | None, str]:
  """([(file's source, piece, index)], '') or (None, why serial).

  Several files (`gdiff.data.sources.MultiSource`) share the pieces equally;
  a piece never spans two files. `on_ready()` is called once the cheap checks
  pass, so that worker start-up overlaps the positions pass.
  """
  parts = getattr(source, 'parts', [source])
  per_part = max(1, round(num_pieces / len(parts)))
  planned, names, seen = [], {}, set()
  for k, part in enumerate(parts):
    folder = scratch
    if len(parts) > 1:
      folder = os.path.join(scratch, f'part-{k:05d}')
      os.makedirs(folder)
    pieces, why, index, contigs = _plan_one(part, folder, per_part, on_ready)
    if pieces is None:
      return None, f'{part.path}: {why}' if len(parts) > 1 else why
    genotypes.check_contig_names(contigs, part.path, names)  # across the files too
    if seen & set(contigs):
      return None, f'{part.path}: a chromosome continues from an earlier file'
    seen |= set(contigs)
    planned += [(part, piece, index) for piece in pieces]
  return planned, ''


def _cpu_s() -> float:
  """CPU seconds of this process and its finished children (tabix) so far."""
  return sum(
    r.ru_utime + r.ru_stime
    for r in (
      resource.getrusage(resource.RUSAGE_SELF),
      resource.getrusage(resource.RUSAGE_CHILDREN),
    )
  )


def _peak_rss_kib() -> int | None:
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith('VmHWM:'):
          return int(line.split()[1])
  except OSError:
    pass
  return None


def _run_piece(task: dict) -> dict:
  """Worker: ingests one piece into `task['out_dir']/shards/`; returns its stats."""
  source, piece = task['source'], task['piece']
  bad_calls = task['qc'].bad_calls
  if getattr(source, 'sliceable', False):  # already sliced to the piece
    chunks = source.chunks(task['chunk_variants'], bad_calls=bad_calls)
  else:
    chunks = itertools.chain.from_iterable(
      source.chunks(task['chunk_variants'], region=r, index=task['index'], bad_calls=bad_calls)
      for r in piece.regions
    )
  stats = ingest_lib.ingest_chunks(
    chunks,
    source.path,
    task['out_dir'],
    len(source.samples),
    task['shard_variants'],
    task['qc'],
    task['hwe_groups_N'],
    sex_chromosomes=task['sex_chromosomes'],
  )
  return dict(stats, pid=os.getpid(), peak_rss_kib=_peak_rss_kib(), cpu_s=_cpu_s())


def _merge(results: list[dict], out_dir: str, scratch_dirs: list[str]) -> dict:
  """Sums piece stats in order and moves their shards to `out_dir/shards/`."""
  merged = {
    'variants_read': 0,
    'variants_kept': 0,
    'dropped': dict.fromkeys(qc_lib.REASONS, 0),
    'bad_calls': dict.fromkeys(genotypes.BAD_CALL_REASONS, 0),
    'haploid_calls': 0,
    'missing_filled': 0,
    'phased': True,
    'unphased_het_calls': 0,
    'kept_per_chromosome': {},
    'shards': [],
  }
  for result, folder in zip(results, scratch_dirs):
    for key in (
      'variants_read',
      'variants_kept',
      'haploid_calls',
      'missing_filled',
      'unphased_het_calls',
    ):
      merged[key] += result[key]
    merged['phased'] &= result['phased']
    for key in ('dropped', 'bad_calls'):
      for reason, count in result[key].items():
        merged[key][reason] += count
    for chrom, count in result['kept_per_chromosome'].items():
      per_chrom = merged['kept_per_chromosome']
      per_chrom[chrom] = per_chrom.get(chrom, 0) + count
    for shard in result['shards']:
      path = cohort_lib.shard_path(out_dir, len(merged['shards']))
      os.replace(os.path.join(folder, shard['file']), path)
      merged['shards'].append(
        {'file': os.path.relpath(path, out_dir), 'variants': shard['variants']}
      )
  return merged


def ingest(
  source,
  out_dir: str,
  chunk_variants: int,
  shard_variants: int,
  qc_cfg,
  hwe_groups_N: np.ndarray | None = None,
  workers: int = 0,
  regions_per_worker: int = 3,
  sex_chromosomes: str = 'drop',
) -> dict:
  """`gdiff.data.ingest.ingest`, over genomic regions in `workers` processes.

  Args:
    source, out_dir, chunk_variants, shard_variants, qc_cfg, hwe_groups_N,
      sex_chromosomes: as `gdiff.data.ingest.ingest`.
    workers: processes; 0 (or 1) serial, -1 one per usable core.
    regions_per_worker: pieces per worker (more balance the load better; each
      costs a little start-up).

  Returns:
    The statistics of the serial path, plus `ingest_parallel`: workers,
    pieces, regions, the peak resident memory of the parent and of each
    worker process (VmHWM, MiB) and each worker's CPU seconds (with its tabix
    children), or None when it ran serially.
  """
  workers = resolve_workers(workers)
  serial = functools.partial(
    ingest_lib.ingest,
    source,
    out_dir,
    chunk_variants,
    shard_variants,
    qc_cfg,
    hwe_groups_N,
    sex_chromosomes=sex_chromosomes,
  )
  if workers <= 1:
    return dict(serial(), ingest_parallel=None)
  start = time.time()
  os.makedirs(os.path.join(out_dir, cohort_lib.SHARD_DIR), exist_ok=True)
  scratch = tempfile.mkdtemp(prefix='.ingest-', dir=out_dir)
  context = multiprocessing.get_context(START_METHOD)
  try:
    planned, why = _plan(
      source,
      scratch,
      workers * max(1, regions_per_worker),
      functools.partial(_start_server, context),
    )
    if planned is not None and len(planned) < 2:
      planned, why = None, 'only one piece'
    if planned is None:
      logging.info('ingest: %s: serial instead of %d workers: %s', source.path, workers, why)
      return dict(serial(), ingest_parallel=None)
    qc_plain = types.SimpleNamespace(**qc_cfg.to_dict())  # small and picklable
    folders = [os.path.join(scratch, f'piece-{k:05d}') for k in range(len(planned))]
    tasks = [
      {
        'source': part.slice(p.start, p.stop) if getattr(part, 'sliceable', False) else part,
        'piece': p,
        'index': index,
        'out_dir': folder,
        'chunk_variants': chunk_variants,
        'shard_variants': shard_variants,
        'qc': qc_plain,
        'hwe_groups_N': hwe_groups_N,
        'sex_chromosomes': sex_chromosomes,
      }
      for (part, p, index), folder in zip(planned, folders)
    ]
    total = sum(p.stop - p.start for _, p, _ in planned)
    results = _run_pool(context, tasks, min(workers, len(tasks)), total)
    for (part, piece, index), result in zip(planned, results):
      if result['variants_read'] != piece.stop - piece.start:
        where = ', '.join(piece.regions) or f'variants {piece.start}-{piece.stop}'
        raise InputError(
          f'{part.path}: {where}: {result["variants_read"]} records read through '
          f'the index {index}, but a full pass found {piece.stop - piece.start} '
          f'(stale index? re-index the file)'
        )
    stats = _merge(results, out_dir, folders)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  wall = time.time() - start
  peaks, cpu = {}, {}  # per worker process: the last piece it ran has the totals
  for r in results:
    peaks[r['pid']] = max(peaks.get(r['pid'], 0), r['peak_rss_kib'] or 0)
    cpu[r['pid']] = max(cpu.get(r['pid'], 0.0), r['cpu_s'])
  parent = _peak_rss_kib()
  ingest_lib.log_stats(source.path, stats, wall, f', {len(peaks)} workers, {len(planned)} pieces')
  return dict(
    stats,
    ingest_wall_s=round(wall, 3),
    ingest_parallel={
      'workers': workers,
      'pieces': len(planned),
      'regions': sum(max(1, len(p.regions)) for _, p, _ in planned),
      'start_method': START_METHOD,
      'parent_peak_rss_mib': round(parent / 1024, 1) if parent else None,
      'worker_peak_rss_mib': [round(v / 1024, 1) for v in peaks.values()],
      'worker_cpu_s': [round(v, 2) for v in cpu.values()],
    },
  )


@contextlib.contextmanager
def _one_blas_thread():
  """Processes started inside use one BLAS thread (workers are the parallelism).

  numpy's threaded BLAS (the genotype-count matmul) oversubscribes the cores
  when every worker runs it with a thread per core.
  """
  saved = {k: os.environ.get(k) for k in _BLAS_THREADS}
  os.environ.update(dict.fromkeys(_BLAS_THREADS, '1'))
  try:
    yield
  finally:
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v


def _start_server(context) -> None:
  """Starts the forkserver (if that is the start method), preloading the imports."""
  if context.get_start_method() == 'forkserver':
    context.set_forkserver_preload(_PRELOAD)
    from multiprocessing import forkserver

    with _one_blas_thread():  # the server imports numpy, so its children inherit it
      forkserver.ensure_running()  # returns at once; the server imports in the background


@contextlib.contextmanager
def _workers_skip_main():
  """Processes started inside do not re-import the parent's __main__.

  multiprocessing re-imports the main module in every spawn/forkserver child;
  under `python -m gdiff.main` that is JAX, about 115 MiB and 0.6 s per
  worker, and workers need nothing from it.
  """
  main = sys.modules['__main__']
  saved = {k: main.__dict__[k] for k in ('__spec__', '__file__') if k in main.__dict__}
  main.__spec__ = None
  main.__dict__.pop('__file__', None)
  try:
    yield
  finally:
    main.__dict__.pop('__spec__', None)
    main.__dict__.update(saved)


def _run_pool(context, tasks: list[dict], workers: int, total: int) -> list[dict]:
  """Runs `_run_piece` over `tasks` in a process pool; results in task order."""
  results: list[dict | None] = [None] * len(tasks)
  progress = tqdm.tqdm(total=total, unit='variants', desc='ingest', disable=None, leave=False)
  with progress, concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
    with _workers_skip_main(), _one_blas_thread():  # all workers start here (spawn: env too)
      futures = {pool.submit(_run_piece, task): k for k, task in enumerate(tasks)}
    try:
      for future in concurrent.futures.as_completed(futures):
        results[futures[future]] = future.result()
        progress.update(results[futures[future]]['variants_read'])
    except BaseException:
      pool.shutdown(wait=True, cancel_futures=True)
      raise
  return results
