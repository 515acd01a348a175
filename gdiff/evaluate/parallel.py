"""Independent pieces of the evaluate stage run side by side in threads.

The rows (gdiff's and each baseline's), the reference row, the studies and the attacks
read only the real references (`Context.reference`: each built once, by the first thread
that asks) and their own seeded streams, so they can run at once: `pool(workers)` yields
a `submit(fn, *args)` that returns a future. The work is numpy/scipy (BLAS, LAPACK), XLA
and plink2, which release the GIL, and much of it uses one core at a time (LAPACK's
tridiagonal reduction, elementwise numpy, scikit-learn on one thread, small classifier
steps), so two pieces at once keep both cores of a small machine busy. The BLAS pool is
held at one thread per piece while more than one runs, so the threads never ask for more
cores than there are.

Each piece's numbers do not depend on `workers` (tests/test_evaluate_parallel.py).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Callable, Iterator
from typing import Any


class _Inline:
  """A finished future: what `submit` returns with one worker (no thread at all)."""

  def __init__(self, value):
    self._value = value

  def result(self):
    return self._value


@contextlib.contextmanager
def pool(workers: int) -> Iterator[Callable[..., Any]]:
  """A `submit(fn, *args, **kwargs) -> future` for `workers` threads; waits for all on exit.

  Args:
    workers: pieces at once; 1 runs each piece when submitted, in the caller's thread.
  """
  if workers <= 1:
    yield lambda fn, *args, **kwargs: _Inline(fn(*args, **kwargs))
    return
  from threadpoolctl import threadpool_limits

  with threadpool_limits(1, user_api='blas'):
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix='evaluate') as ex:
      yield ex.submit
