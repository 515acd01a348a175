"""Command line of one segment job of the ar generator (`gdiff.ar.segments`).

  python -m gdiff.segments --config=configs/kg1.py --workdir=W --list \
    --config.ar.segments=chromosome
  python -m gdiff.segments --config=... --workdir=W --config.ar.segments=chromosome --segment=chr2
  python -m gdiff.segments --config=... --workdir=W --config.ar.segments=chromosome --index=1

--list prints the segments' names (and writes them to W/checkpoints/ar/segments.txt; with
ar.ancestry_pcs > 0 it also fits the genome-wide ancestry code once, for all segments);
--segment / --index fits one segment (by name, or by its line in that list: a job array's
task id) unless it is already done. Every job needs the prepare stage done in W; once all
segments are done, `python -m gdiff.main --mode=train` (or --mode=all) records the train
stage without refitting anything. launch/segments_local.sh and launch/segments_slurm.sh run
the whole plan. Errors: one `gdiff: error: ...` line and exit code 2, as gdiff.main.
"""

import logging
import sys

from absl import flags

from gdiff import main as main_lib
from gdiff import pipeline
from gdiff import workdir as wd
from gdiff.errors import InputError


def _flags(flag_values: flags.FlagValues, argv: list[str]):
  holders = main_lib.define_flags(flag_values, sys_argv=argv)
  holders.segment = flags.DEFINE_string(
    'segment', None, 'Fit the segment of this name.', flag_values=flag_values
  )
  holders.index = flags.DEFINE_integer(
    'index', None, 'Fit the segment on this line (0-based) of the list.', flag_values=flag_values
  )
  holders.list = flags.DEFINE_bool(
    'list', False, 'Print the segment names (one a line).', flag_values=flag_values
  )
  return holders


def run_job(config, workdir: str, *, segment=None, index=None, listing=False) -> list[str]:
  """One job: the names of the plan (--list) or fits one segment; returns the plan's names."""
  from gdiff.ar import segments

  if config.generator != 'ar':
    raise InputError(f"config generator={config.generator!r}: segments are for 'ar'")
  pipeline.check_config(config, 'train')
  if not segments.segmented(config.ar):
    raise InputError(
      "config ar.segments='genome': one segment; set --config.ar.segments=chromosome or a "
      'SNP count, or run python -m gdiff.main --mode=train'
    )
  if (segment is not None) + (index is not None) + bool(listing) != 1:
    raise InputError('give one of --list, --segment=NAME, --index=I')
  wd.open_workdir(workdir, ('train',))
  if wd.check(config, workdir, 'train'):
    logging.info('train: already done in %s; nothing to fit', workdir)
  segments.claim(workdir)
  data = segments.Data(config, workdir)  # fits the shared ancestry code if needed
  names = [s.name for s in data.segments]
  if listing:
    segments.write_list(workdir, data.segments)
    return names
  if index is not None:
    if not 0 <= index < len(names):
      raise InputError(f'--index={index}: the plan has {len(names)} segments (0..{len(names) - 1})')
    segment = names[index]
  if segment not in names:
    raise InputError(
      f'--segment={segment}: no such segment; ar.segments={config.ar.segments!r} gives '
      f'{", ".join(names[:6])}{" ..." if len(names) > 6 else ""}'
    )
  seg = data.segments[names.index(segment)]
  if segments.is_done(config, workdir, seg.name):
    logging.info('ar: segment %s already done; skipping', seg.name)
  else:
    logging.info('ar: fitting segment %s (SNPs %d-%d)', seg.name, seg.lo, seg.hi)
    segments.fit_segment(config, workdir, data, seg)
  return names


def run(argv: list[str]) -> None:
  flag_values = flags.FlagValues()
  holders = _flags(flag_values, argv)
  try:
    main_lib.parse(argv, flag_values, holders)
    names = run_job(
      holders.config.value,
      holders.workdir.value,
      segment=holders.segment.value,
      index=holders.index.value,
      listing=holders.list.value,
    )
  except InputError as e:
    if holders.verbose.value:
      raise
    main_lib._fail(e)
  if holders.list.value:
    print('\n'.join(names), flush=True)


def main() -> None:
  """Log lines go to stderr: stdout holds only what --list prints."""
  logging.basicConfig(
    level=logging.INFO, stream=sys.stderr, format='%(asctime)s %(levelname).1s %(message)s'
  )
  for noisy in ('absl', 'orbax', 'jax._src'):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  run(sys.argv)


if __name__ == '__main__':
  main()
