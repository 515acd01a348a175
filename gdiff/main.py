"""Command line of gdiff.

  gdiff --config=configs/als.py --workdir=DIR [--mode=all]
  python -m gdiff.main ...        (the same command)

Any config value can be overridden: `--config.train.num_steps=200`.

Every mistake of the user (a flag, a config key or value, a file, the workdir)
ends the run with one line on stderr, `gdiff: error: ...`, naming the flag,
option, file or line, and exit code 2, before any stage starts where it can be
known then; log lines go to stdout, so stderr holds only the error. `--verbose`
shows the traceback instead. A run that succeeds writes nothing to stderr: Python
warnings become log lines, libraries' messages that ask nothing of the user are
dropped (`NOISE`), and progress bars show only on a terminal.
"""

import difflib
import importlib.util
import logging
import os
import sys
import types

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_dict, config_flags

from gdiff import distributed, pipeline, xla_cpu
from gdiff.errors import InputError

_PREFIX = 'gdiff: error: '


def define_flags(flag_values: flags.FlagValues, sys_argv: list[str] | None = None):
  """Defines gdiff's flags on `flag_values`; returns their holders."""
  holders = types.SimpleNamespace(
    config=config_flags.DEFINE_config_file(
      'config',
      None,
      'Config file, e.g. configs/als.py.',
      flag_values=flag_values,
      lock_config=True,
      sys_argv=sys_argv,
    ),
    workdir=flags.DEFINE_string(
      'workdir', None, 'Directory for all outputs of a run.', flag_values=flag_values
    ),
    mode=flags.DEFINE_enum(
      'mode', 'all', list(pipeline.MODES), 'Which stage(s) to run.', flag_values=flag_values
    ),
    verbose=flags.DEFINE_bool(
      'verbose', False, 'Show tracebacks for input errors.', flag_values=flag_values
    ),
  )
  flags.mark_flags_as_required(['config', 'workdir'], flag_values=flag_values)
  return holders


_FLAGS = define_flags(flags.FLAGS)


def _config_arg(argv: list[str]) -> str | None:
  """The value of the last --config in `argv` (either form; absl keeps the last), or None."""
  value = None
  for i, arg in enumerate(argv):
    for prefix in ('--config=', '-config='):
      if arg.startswith(prefix):
        value = arg[len(prefix) :]
    if arg in ('--config', '-config') and i + 1 < len(argv):
      value = argv[i + 1]
  return value


def load_config_file(spec: str) -> config_dict.ConfigDict:
  """`get_config([arg])` of `FILE[:arg]`, as config_flags loads it; InputError if it fails."""
  path, *arg = spec.split(':', 1)
  if not os.path.isfile(path):
    raise InputError(f'--config={spec}: no such config file: {path}')
  try:
    module_spec = importlib.util.spec_from_file_location('gdiff_user_config', path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(*arg)
  except ValueError as e:  # e.g. an unknown variant (configs/base.py `with_variant`)
    raise InputError(f'--config={spec}: {e}') from e
  except Exception as e:  # the config file is the user's code: any error is theirs
    raise InputError(f'--config={spec}: {type(e).__name__}: {e}') from e


def _dotted_keys(config, prefix: str = '') -> list[str]:
  out = []
  for key, value in config.items():
    out.append(prefix + key)
    if isinstance(value, config_dict.ConfigDict):
      out += _dotted_keys(value, f'{prefix}{key}.')
  return out


def check_overrides(argv: list[str]) -> None:
  """Refuses a missing config file, an unknown variant and unknown `--config.KEY`s.

  An unknown key is named with the nearest valid key (difflib); config_flags
  itself would fail with a long traceback.
  """
  spec = _config_arg(argv)
  if spec is None:
    return  # absl reports the missing flag
  config = load_config_file(spec)
  keys = None
  for arg in argv:
    name = arg.split('=', 1)[0].lstrip('-')
    if name.startswith('noconfig.'):
      name = name[2:]
    if not name.startswith('config.'):
      continue
    node, path = config, name[len('config.') :]
    for part in path.split('.'):
      if not isinstance(node, config_dict.ConfigDict) or part not in node:
        keys = keys or _dotted_keys(config)
        near = difflib.get_close_matches(path, keys, n=1, cutoff=0.6)
        hint = f'; did you mean --config.{near[0]}?' if near else ''
        raise InputError(f'--{name}: no such config key in {spec}{hint}')
      node = node[part]


def _one_line(text: str) -> str:
  return ' '.join(line.strip() for line in str(text).strip().splitlines() if line.strip())


def parse(argv: list[str], flag_values: flags.FlagValues, holders) -> list[str]:
  """Parses `argv` onto `flag_values` and loads the config; InputError (one line) if wrong."""
  check_overrides(argv)
  try:
    rest = flag_values(argv)
    holders.config.value.to_dict()  # config_flags loads lazily: fail here, not in a stage
  except flags.Error as e:
    raise InputError(_one_line(e)) from e
  except (OSError, ValueError, TypeError, AttributeError, KeyError) as e:
    raise InputError(f'--config: {_one_line(e)}') from e
  if len(rest) > 1:
    raise InputError(f'unexpected arguments: {" ".join(rest[1:])}')
  return rest


def _fail(error: Exception) -> None:
  print(_PREFIX + _one_line(error), file=sys.stderr, flush=True)
  sys.exit(2)


def _run_stages(holders, argv: list[str]) -> None:
  try:
    pipeline.run(holders.config.value, holders.workdir.value, holders.mode.value, argv=argv)
  except InputError as e:
    if holders.verbose.value:
      raise
    _fail(e)


def run(argv: list[str]) -> None:
  """The whole command in this process, on its own flags (tests call it with argv).

  Raises:
    SystemExit(2) after printing the one error line to stderr.
  """
  flag_values = flags.FlagValues()
  holders = define_flags(flag_values, sys_argv=argv)
  try:
    parse(argv, flag_values, holders)
  except InputError as e:
    _fail(e)
  _run_stages(holders, argv)


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flags parser for `app.run`: one line and exit code 2 for any mistake."""
  try:
    return parse(argv, flags.FLAGS, _FLAGS)
  except InputError as e:
    _fail(e)


# Library log messages that ask nothing of the user (matched in the message's text): orbax
# on opening a checkpoint read-only (every sample stage) and on its background saves.
NOISE = (
  'CheckpointManagerOptions.read_only=True',
  'Given directory is read only',
  'No registered CheckpointArgs found for handler',
  'Please add `.wait_until_finished()`',
)


class _DropNoise(logging.Filter):
  def filter(self, record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not any(text in message for text in NOISE)


def configure_logging() -> None:
  """Log lines for people on stdout; stderr keeps only gdiff's one error line."""
  logging.getLogger().setLevel(logging.INFO)
  # Short log lines (time, level, message), on stdout: stderr is for the error.
  handler = absl_logging.get_absl_handler()
  handler.setFormatter(logging.Formatter('%(asctime)s %(levelname).1s %(message)s', '%H:%M:%S'))
  handler.python_handler.stream = sys.stdout
  handler.addFilter(_DropNoise())
  # Orbax and absl-wrapped libraries report every checkpoint step at INFO; matplotlib
  # announces its font cache.
  for noisy in ('absl', 'orbax', 'jax._src'):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  logging.getLogger('matplotlib').setLevel(logging.ERROR)
  logging.captureWarnings(True)  # Python warnings: log lines (py.warnings), not stderr


def main(argv):
  del argv  # checked by `parse`
  configure_logging()
  xla_cpu.configure()  # before the backend starts: XLA_FLAGS is read once
  distributed.initialize()
  _run_stages(_FLAGS, sys.argv)


def console() -> None:
  """The `gdiff` command (setup.cfg's console_scripts entry point)."""
  app.run(main, flags_parser=_parse_flags)


if __name__ == '__main__':
  console()
