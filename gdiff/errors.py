"""The one exception type that reaches users as a single line.

Library code raises `InputError` for anything the user can fix (a missing
file, a malformed line, an unknown option, an incompatible workdir). `main`
prints it as one line and exits non-zero; any other exception is a bug and
keeps its traceback.
"""


class InputError(Exception):
  """Bad input or configuration, with a message that names the file, line or option."""


def where(path, line: int | None = None) -> str:
  """`path:line` (or just `path`) for error messages."""
  return f'{path}:{line}' if line is not None else str(path)
