"""Command line of gdiff.

  python -m gdiff.main --config=configs/als.py --workdir=DIR [--mode=all]

Any config value can be overridden: `--config.train.num_steps=200`.
"""

import logging
import sys

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from gdiff import distributed, pipeline
from gdiff.errors import InputError

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file, e.g. configs/als.py.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for all outputs of a run.')
_MODE = flags.DEFINE_enum('mode', 'all', list(pipeline.MODES), 'Which stage(s) to run.')
_VERBOSE = flags.DEFINE_bool('verbose', False, 'Show tracebacks for input errors.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  logging.getLogger().setLevel(logging.INFO)
  # Short log lines for people: time, level, message (absl's default adds thread and file).
  absl_logging.get_absl_handler().setFormatter(
      logging.Formatter('%(asctime)s %(levelname).1s %(message)s', '%H:%M:%S'))
  # Orbax and absl-wrapped libraries report every checkpoint step at INFO.
  for noisy in ('absl', 'orbax', 'jax._src'):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  distributed.initialize()
  try:
    pipeline.run(_CONFIG.value, _WORKDIR.value, _MODE.value)
  except InputError as e:
    if _VERBOSE.value:
      raise
    print(f'gdiff: error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main)
