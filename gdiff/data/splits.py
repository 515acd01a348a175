"""Labels and train/val/test splits of a cohort.

Labels come from a TSV with a `sample` column and the configured label column.
The split is either stratified and seeded (each class shuffled with
`split_seed`, then `test_fraction` and `val_fraction` of it, at least one
sample each when the fraction is positive, go to test and val) or read from a
`split_file` (columns `sample`, `split`). Later stages fit only on train.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from gdiff.data.cohort import SPLITS
from gdiff.errors import InputError, where


def _few(names: Sequence[str], k: int = 3) -> str:
  names = list(names)
  return ', '.join(names[:k]) + (', ...' if len(names) > k else '')


def _unquote(field: str, at: str) -> str:
  """A field as a spreadsheet writes it: "text" loses its quotes ("" inside is one ")."""
  text = field.strip()
  if '"' not in text:
    return text
  inner = text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else None
  if inner is None or '"' in inner.replace('""', ''):
    raise InputError(
      f'{at}: unbalanced quote in {text!r} (fields may be quoted as a whole, '
      f'"like this"; a tab or line break inside quotes is not supported)'
    )
  return inner.replace('""', '"').strip()


def _lines(path: str) -> list[str]:
  """The file's lines as text; InputError naming the line where it is not UTF-8."""
  with open(path, 'rb') as f:
    data = f.read()
  try:
    text = data.decode('utf-8-sig')
  except UnicodeDecodeError as e:
    line = data[: e.start].count(b'\n') + 1
    raise InputError(
      f'{path} is not UTF-8 (byte 0x{data[e.start]:02x} on line {line}): re-save it as UTF-8'
    ) from e
  lines = [x[:-1] if x.endswith('\r') else x for x in text.split('\n')]
  return lines[:-1] if lines and not lines[-1] else lines


# Label values that mean "unknown" in common tools (R, pandas, plink, spreadsheets).
MISSING_VALUES = frozenset({'na', 'n/a', 'nan', 'null', '.', '-9', '#n/a'})


def read_table(path: str, columns: Sequence[str], option: str) -> list[tuple[int, dict]]:
  """Reads a TSV with a header; returns (line number, row dict) for non-empty rows.

  Fields are split at tabs; a field quoted as a whole ("S 1") is unquoted, and
  any other quote is an error naming the line (a spreadsheet's stray quote
  would otherwise swallow the lines after it).

  Args:
    path: the file.
    columns: columns that must be in the header.
    option: the config option that named the file (for error messages).
  """
  if not path:
    raise InputError(f'{option}: not set')
  if not os.path.isfile(path):
    raise InputError(f'{option}: no such file: {path}')
  lines = _lines(path)
  if not lines:
    raise InputError(f'{path}: empty file (expected a header with {", ".join(columns)})')
  header = [_unquote(h, where(path, 1)) for h in lines[0].split('\t')]
  missing = [c for c in columns if c not in header]
  if missing:
    raise InputError(
      f'{where(path, 1)}: no column {", ".join(map(repr, missing))} in the '
      f'header ({", ".join(header)}); set {option} or the column option'
    )
  rows = []
  for line, text in enumerate(lines[1:], 2):
    if not text.strip():
      continue
    row = text.split('\t')
    if len(row) != len(header):
      raise InputError(
        f'{where(path, line)}: {len(row)} tab-separated fields, the header has {len(header)}'
      )
    rows.append((line, {h: _unquote(x, where(path, line)) for h, x in zip(header, row)}))
  return rows


def _by_sample(path: str, rows, column: str) -> dict[str, str]:
  out, first = {}, {}
  for line, row in rows:
    sample, value = row['sample'], row[column]
    if not sample:
      raise InputError(f'{where(path, line)}: empty sample ID')
    if not value:
      raise InputError(f'{where(path, line)}: empty {column!r} for sample {sample}')
    if value.lower() in MISSING_VALUES:
      raise InputError(
        f'{where(path, line)}: {column!r} of sample {sample} is {value!r}, a '
        f'missing value; give every sample of the genotypes a label (or '
        f'remove the sample from the genotype file)'
      )
    if sample in out:
      raise InputError(
        f'{where(path, line)}: sample {sample} repeated (first on line {first[sample]})'
      )
    out[sample], first[sample] = value, line
  return out


def _match(samples: np.ndarray, table: dict[str, str], path: str, geno: str) -> np.ndarray:
  sample_set = set(samples.tolist())
  absent = [s for s in table if s not in sample_set]
  missing = [s for s in samples if s not in table]
  if absent:
    raise InputError(f'{path}: {len(absent)} sample(s) not in the genotypes {geno}: {_few(absent)}')
  if missing:
    raise InputError(
      f'{path}: {len(missing)} sample(s) of the genotypes {geno} are missing here: {_few(missing)}'
    )
  return np.array([table[s] for s in samples], dtype=object).astype(str)


def check_samples(samples: Sequence[str], geno: str) -> None:
  """Raises InputError on duplicate or empty sample IDs in the genotype file."""
  seen, dups = set(), []
  for s in samples:
    if s in seen:
      dups.append(s)
    seen.add(s)
  if dups:
    raise InputError(f'{geno}: {len(dups)} duplicate sample ID(s): {_few(sorted(set(dups)))}')
  if not len(samples):
    raise InputError(f'{geno}: no samples')


def read_labels(path: str, label_column: str, samples: np.ndarray, geno: str) -> np.ndarray:
  """Labels in genotype sample order.

  Args:
    path: the labels TSV (`data.labels`).
    label_column: its label column (`data.label_column`).
    samples: (N,) sample IDs of the genotype file.
    geno: the genotype file, for messages.

  Returns:
    (N,) str labels.
  """
  rows = read_table(path, ('sample', label_column), 'data.labels')
  return _match(samples, _by_sample(path, rows, label_column), path, geno)


def read_split_file(path: str, samples: np.ndarray, geno: str) -> np.ndarray:
  """Splits from `data.split_file` in genotype sample order, (N,) str."""
  rows = read_table(path, ('sample', 'split'), 'data.split_file')
  for line, row in rows:
    if row['split'] not in SPLITS:
      raise InputError(
        f'{where(path, line)}: split {row["split"]!r} is not one of {", ".join(SPLITS)}'
      )
  return _match(samples, _by_sample(path, rows, 'split'), path, geno)


def stratified_split(
  labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> np.ndarray:
  """Seeded stratified split.

  Args:
    labels: (N,) class of each sample.
    val_fraction, test_fraction: shares of each class for val and test.
    seed: `data.split_seed`.

  Returns:
    (N,) str in {train, val, test}.
  """
  for name, f in (('val_fraction', val_fraction), ('test_fraction', test_fraction)):
    if not 0.0 <= f < 1.0:
      raise InputError(f'data.{name}: must be in [0, 1), got {f}')
  if val_fraction + test_fraction >= 1.0:
    raise InputError(
      f'data.val_fraction + data.test_fraction must be < 1, got {val_fraction} + {test_fraction}'
    )
  labels = np.asarray(labels).astype(str)
  split = np.full(len(labels), 'train', dtype=object)
  rng = np.random.default_rng(seed)
  for cls in sorted(set(labels.tolist())):
    rows = rng.permutation(np.flatnonzero(labels == cls))
    n = len(rows)
    n_test = max(1, int(round(n * test_fraction))) if test_fraction > 0 else 0
    n_val = max(1, int(round(n * val_fraction))) if val_fraction > 0 else 0
    if n - n_test - n_val < 1:
      raise InputError(
        f'class {cls!r} has {n} sample(s), too few to split with '
        f'data.val_fraction={val_fraction} and data.test_fraction={test_fraction} '
        f'(needs {1 + (n_val > 0) + (n_test > 0)})'
      )
    split[rows[:n_test]] = 'test'
    split[rows[n_test : n_test + n_val]] = 'val'
  return split.astype(str)


def check_split(labels: np.ndarray, split: np.ndarray, source: str) -> None:
  """Every class needs train samples; val (checkpoint choice) and test (report) must exist."""
  for cls in sorted(set(labels.tolist())):
    if not np.any((labels == cls) & (split == 'train')):
      raise InputError(f'{source}: class {cls!r} has no train sample')
  for name in ('val', 'test'):
    if not np.any(split == name):
      raise InputError(
        f'{source}: the {name} split is empty (training picks its checkpoint '
        f'on val and the report judges on test)'
      )


def counts(labels: np.ndarray, split: np.ndarray) -> dict:
  """Sample counts per class, per split and per class and split (for the manifest)."""
  classes = sorted(set(labels.tolist()))
  return {
    'total': int(len(labels)),
    'per_class': {c: int((labels == c).sum()) for c in classes},
    'per_split': {s: int((split == s).sum()) for s in SPLITS},
    'per_class_split': {
      c: {s: int(((labels == c) & (split == s)).sum()) for s in SPLITS} for c in classes
    },
  }
