"""Which reader opens a genotype input, and several files read as one cohort.

Inputs (`data.vcf`, `data.plink`, `data.pgen`; one of them) name one file (a
PLINK or PGEN prefix), a list of them (a Python list in a config, or a
comma-separated string on the command line), or a glob ('chr*.vcf.gz', its
matches in natural order: chr2 before chr10). Several files are read as one
cohort (`MultiSource`): the same sample IDs in the same order in every file
(else one line naming the first file that differs), variants in file order
(each chromosome in one file or consecutive files, sorted, as within one
file), and their '##contig' header lines merged (a contig given two lengths is
refused).

BGEN is not read: an input that is a BGEN file is refused with the plink2
command that converts it to PGEN.
"""

from __future__ import annotations

import glob
import itertools
import os
import re
from collections.abc import Iterator, Sequence

import numpy as np

from gdiff.data import pgen, plink, vcf
from gdiff.data import qc as qc_lib
from gdiff.errors import InputError

# data.<kind> -> reader of one file (or fileset prefix).
SOURCES = {'vcf': vcf.VcfSource, 'plink': plink.PlinkSource, 'pgen': pgen.PgenSource}
# data.<kind> -> the files of one prefix (what changes a cohort, fingerprinted by prepare).
FILESETS = {
  'vcf': lambda path: [path],
  'plink': lambda path: [plink.prefix_of(path) + e for e in ('.bed', '.bim', '.fam')],
  'pgen': lambda path: [pgen.prefix_of(path) + e for e in pgen.EXTENSIONS],
}
# A glob of PLINK or PGEN filesets matches one of their files.
_GLOB_SUFFIX = {'vcf': '', 'plink': '.bed', 'pgen': '.pgen'}
_GLOB_CHARS = re.compile(r'[*?\[]')
_BGEN_MAGIC = b'bgen'


def _natural(path: str) -> list:
  """Sort key: digit runs compare as numbers (chr2 before chr10)."""
  return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', path)]


def expand(kind: str, value) -> list[str]:
  """The paths (files or prefixes) that `data.<kind>` names, in reading order.

  Args:
    kind: 'vcf', 'plink' or 'pgen'.
    value: a path, a glob, a comma-separated string of them, or a list/tuple.

  Returns:
    Paths; a glob's matches in natural order (PLINK/PGEN: the prefixes of the
    matched .bed/.pgen files, or of any of their files).
  """
  items = value.split(',') if isinstance(value, str) else list(value)
  paths = []
  for item in (str(x).strip() for x in items):
    if not item:
      continue
    if not _GLOB_CHARS.search(item):
      paths.append(item)
      continue
    matches = glob.glob(item) or glob.glob(item + _GLOB_SUFFIX[kind])
    if kind == 'vcf':
      matches = [m for m in matches if not m.endswith(('.tbi', '.csi'))]
    else:
      prefix = pgen.prefix_of if kind == 'pgen' else plink.prefix_of
      matches = list(dict.fromkeys(prefix(m) for m in matches))
    if not matches:
      raise InputError(f'data.{kind}: no file matches {item!r}')
    paths.extend(sorted(matches, key=_natural))
  if not paths:
    raise InputError(f'data.{kind}: no file given')
  duplicates = [p for p, n in zip(*np.unique(paths, return_counts=True)) if n > 1]
  if duplicates:
    raise InputError(f'data.{kind}: {duplicates[0]} is given twice')
  return paths


def refuse_bgen(path: str) -> None:
  """Refuses a BGEN file (by its extension or its magic number) with the command to convert it."""
  bgen = path.endswith('.bgen')
  if not bgen and os.path.isfile(path):
    with open(path, 'rb') as f:
      bgen = f.read(20)[16:20] == _BGEN_MAGIC
  if bgen:
    stem = os.path.splitext(path)[0]
    raise InputError(
      f'{path}: BGEN input is not read directly; convert it: plink2 --bgen {path} '
      f'ref-first --sample {stem}.sample --make-pgen --out {stem}, then '
      f'--config.data.pgen={stem}'
    )


def open_source(kind: str, value):
  """Opens `data.<kind>` (one or several files); reads only sample lists and headers.

  Returns:
    A source: `kind`, `path` (for messages), `paths`, `samples`, `num_variants`
    (None when unknown before reading), `contigs`, `reference` and
    `chunks(chunk_variants, bad_calls=...)`.
  """
  paths = expand(kind, value)
  for path in paths:
    refuse_bgen(path)
    if kind != 'pgen' and path.endswith(pgen.EXTENSIONS):
      raise InputError(
        f'data.{kind}: {path} is part of a plink2 PGEN fileset; give it as '
        f'--config.data.pgen={pgen.prefix_of(path)}'
      )
  parts = [SOURCES[kind](path) for path in paths]
  if len(parts) == 1:
    part = parts[0]
    part.paths = [part.path]
    return part
  return MultiSource(kind, parts)


def merge_contigs(parts: Sequence) -> list[tuple[str, int]]:
  """The parts' header contigs in first-seen order; one contig with two lengths is refused."""
  merged: dict[str, int] = {}
  for part in parts:
    for name, length in getattr(part, 'contigs', []):
      if merged.setdefault(name, length) != length:
        raise InputError(
          f'{part.path}: ##contig {name} has length {length}, but {merged[name]} in an '
          f'earlier file (files of different reference builds?)'
        )
  return list(merged.items())


class MultiSource:
  """Several files of one kind read as one cohort, in the given order."""

  def __init__(self, kind: str, parts: Sequence):
    self.kind = kind
    self.parts = list(parts)
    self.paths = [p.path for p in self.parts]
    self.path = f'{self.paths[0]} (+{len(self.paths) - 1} more)'
    self.samples = self.parts[0].samples
    for part in self.parts[1:]:
      if not np.array_equal(part.samples, self.samples):
        raise InputError(_samples_differ(part, self.parts[0]))
    counts = [p.num_variants for p in self.parts]
    self.num_variants = None if None in counts else sum(counts)
    self.contigs = merge_contigs(self.parts)
    references = {p.reference for p in self.parts if getattr(p, 'reference', None)}
    if len(references) > 1:
      raise InputError(
        f'data.{kind}: the files name different ##reference lines: {", ".join(sorted(references))}'
      )
    self.reference = references.pop() if references else None

  def chunks(self, chunk_variants: int, bad_calls: str = 'error') -> Iterator[qc_lib.RawChunk]:
    """The parts' chunks, file after file."""
    return itertools.chain.from_iterable(
      p.chunks(chunk_variants, bad_calls=bad_calls) for p in self.parts
    )


def _samples_differ(part, first) -> str:
  a, b = first.samples.tolist(), part.samples.tolist()
  if len(a) != len(b):
    why = f'{len(b)} samples, {first.path} has {len(a)}'
  elif set(a) == set(b):
    why = 'the same samples in another order'
  else:
    k = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    why = f'sample {k + 1} is {b[k]!r}, {first.path} has {a[k]!r}'
  return (
    f'{part.path}: samples differ from the first file ({why}); every file must list '
    f'the same samples in the same order'
  )
