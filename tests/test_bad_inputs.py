"""A table of malformed files and options through the command line, in this process.

Every case is generated here (nothing is committed) and run as
`gdiff.main.run(argv)` into a workdir that already holds files. Each must end
with exit code 2 and exactly one line on stderr (fd level, so C libraries'
output counts too), `gdiff: error: ...`, that names the file, line or option;
and the workdir must be byte-identical afterwards (every file, folder and
hidden name, hashed before and after). `test_the_real_command_line` runs two
cases through `python -m gdiff.main` for the real exit code and the
stdout/stderr split.
"""

import gzip
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from configs import als
from gdiff import main
from gdiff import workdir as wd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, 'configs', 'als.py')
SAMPLES = [f's{i}' for i in range(1, 13)]
CLASSES = ['A'] * 6 + ['B'] * 6
HEADER = [
  '##fileformat=VCFv4.2',
  '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
  '\t'.join(['#CHROM', 'POS', 'ID', 'REF', 'ALT', 'QUAL', 'FILTER', 'INFO', 'FORMAT', *SAMPLES]),
]


def _records(chrom='1', n=20, calls=None, alt='G', fmt='GT', start=100):
  """Data lines; `calls(i, rng)` gives record i's 12 GT texts (default: random 0/1 phased)."""
  rng = np.random.default_rng(7)
  out = []
  for i in range(n):
    gts = calls(i, rng) if calls else [f'{a}|{b}' for a, b in rng.integers(0, 2, (12, 2))]
    out.append(
      '\t'.join([chrom, str(start + 10 * i), f'v{i}', 'A', alt, '.', 'PASS', '.', fmt, *gts])
    )
  return out


def _text(lines):
  return ('\n'.join(lines) + '\n').encode()


def bgzf(parts, eof=True):
  """BGZF bytes: one block per part (SAM spec 4.1), then the EOF block if `eof`."""
  out = b''
  for payload in parts + ([b''] if eof else []):
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = deflate.compress(payload) + deflate.flush()
    out += (
      b'\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00'
      + struct.pack('<H', len(data) + 25)
      + data
      + struct.pack('<II', zlib.crc32(payload), len(payload))
    )
  return out


def _with_call(i_bad, call, chrom='1'):
  """Records where record `i_bad`'s first sample has `call`."""

  def calls(i, rng):
    gts = [f'{a}|{b}' for a, b in rng.integers(0, 2, (12, 2))]
    if i == i_bad:
      gts[0] = call
    return gts

  return _records(chrom, calls=calls)


def _labels_text(rows=None, header='sample\tlabel'):
  rows = rows if rows is not None else [f'{s}\t{c}' for s, c in zip(SAMPLES, CLASSES)]
  return ('\n'.join([header, *rows]) + '\n').encode()


def _cases():
  """(name, files {name: bytes}, flags (may use {d} for the files' folder), regex, setup).

  `setup(workdir, d)` adds case-specific prior content to the workdir (or replaces it).
  """
  good = _text(HEADER + _records())
  labels = _labels_text()
  data = ['--config.data.vcf={d}/c.vcf', '--config.data.labels={d}/l.tsv']
  base = {'c.vcf': good, 'l.tsv': labels}
  lines = HEADER + _records()
  half = len(lines) // 2
  blocks = [_text(lines[:half]), _text(lines[half:])]
  swap = lambda i, a, b: lambda lines: lines[:i] + [lines[i].replace(a, b, 1)] + lines[i + 1 :]

  def user_folder(name):
    def setup(w, d):
      os.makedirs(os.path.join(w, name, 'sub'))
      with open(os.path.join(w, name, 'sub', 'results.csv'), 'w') as f:
        f.write('mine\n')

    return setup

  def record(text, stage='prepare'):
    def setup(w, d):
      os.makedirs(os.path.join(w, 'stages'))
      with open(os.path.join(w, 'stages', f'{stage}.json'), 'w') as f:
        f.write(text)

    return setup

  def older(w, d):
    wd.mark_done(als.get_config(), w, 'prepare')
    path = os.path.join(w, 'stages', 'prepare.json')
    with open(path) as f:
      rec = json.load(f)
    del rec['format']  # as every gdiff before the format number wrote it
    with open(path, 'w') as f:
      json.dump(rec, f)

  def changed_labels(w, d):
    config = als.get_config()
    config.data.vcf, config.data.labels = f'{d}/c.vcf', f'{d}/l.tsv'
    wd.mark_done(config, w, 'prepare', inputs=wd.fingerprint({'data.labels': f'{d}/l.tsv'}))
    with open(f'{d}/l.tsv', 'ab') as f:
      f.write(b's99\tA\n')  # fixed in place after the workdir was made

  def stages_file(w, d):
    with open(os.path.join(w, 'stages'), 'w') as f:
      f.write('my notes')

  def workdir_file(w, d):
    shutil.rmtree(w)
    with open(w, 'w') as f:
      f.write('a file, not a folder')

  def read_only(w, d):
    os.chmod(w, 0o555)

  def plink(fam_rows=12, drop_bim=False):
    files = {}
    bim = ''.join(f'1\tv{i}\t0\t{100 + 10 * i}\tG\tA\n' for i in range(20))
    fam = ''.join(f'{s}\t{s}\t0\t0\t0\t-9\n' for s in SAMPLES[:fam_rows])
    files['p.bim'] = b'' if drop_bim else bim.encode()
    files['p.fam'] = fam.encode()
    files['p.bed'] = b'\x6c\x1b\x01' + bytes(20 * 3)  # 12 samples: 3 bytes per variant
    return files

  c = [
    # ---- flags and config
    (
      'key_typo',
      base,
      ['--config.data.vfc=x.vcf'],
      r'--config\.data\.vfc: no such config key in .*als\.py; did you mean --config\.data\.vcf'
      r'\?',
      None,
    ),
    (
      'section_typo',
      base,
      ['--config.dat.vcf=x.vcf'],
      r'--config\.dat\.vcf: no such config key .*did you mean --config\.data\.vcf\?',
      None,
    ),
    (
      'missing_config_file',
      base,
      ['--config={d}/nope.py'],
      r'--config=.*nope\.py: no such config file',
      None,
    ),
    (
      'unknown_variant',
      base,
      [f'--config={CONFIG}:nope'],
      r"--config=.*als\.py:nope: .*unknown variant 'nope' \(known: ",
      None,
    ),
    (
      'float_not_a_number',
      base,
      ['--config.data.qc.min_maf=abc'],
      r'--config\.data\.qc\.min_maf=abc: could not convert',
      None,
    ),
    (
      'int_not_an_int',
      base,
      ['--config.train.num_steps=1.5'],
      r'--config\.train\.num_steps=1\.5: invalid literal',
      None,
    ),
    (
      'maf_out_of_range',
      base,
      ['--config.data.qc.min_maf=0.7'],
      r'data\.qc\.min_maf: must be in \[0\.0, 0\.5\], got 0\.7',
      None,
    ),
    (
      'schedule_typo_before_prepare',
      base,
      ['--mode=all', '--config.diffusion.schedule=cosin'],
      r"diffusion\.schedule='cosin' is unknown",
      None,
    ),
    ('model_name', base, ['--mode=all', '--config.model.name=unet'], r"model\.name='unet'", None),
    (
      'sampler_name',
      base,
      ['--mode=all', '--config.sample.method=euler'],
      r"sample\.method='euler'",
      None,
    ),
    (
      'holdout',
      base,
      ['--mode=all', '--config.evaluate.holdout=train'],
      r"evaluate\.holdout='train'",
      None,
    ),
    (
      'learning_rate',
      base,
      ['--mode=all', '--config.train.learning_rate=0'],
      r'train\.learning_rate=0\.0: must be > 0',
      None,
    ),
    ('decoder', base, ['--config.embedding.decode=nearest'], r"embedding\.decode='nearest'", None),
    (
      'genes_without_annotation',
      base,
      ['--config.embedding.grouping=genes'],
      r'embedding\.grouping=genes needs embedding\.annotation',
      None,
    ),
    (
      'annotation_missing',
      base,
      ['--config.embedding.grouping=genes', '--config.embedding.annotation={d}/genes.bed'],
      r'embedding\.annotation: no such file: .*genes\.bed',
      None,
    ),
    (
      'bad_calls_option',
      base,
      ['--config.data.qc.bad_calls=maybe'],
      r"data\.qc\.bad_calls: unknown 'maybe'",
      None,
    ),
    (
      'both_vcf_and_plink',
      base,
      data + ['--config.data.plink={d}/p'],
      r'data\.vcf and data\.plink are both set',
      None,
    ),
    ('unknown_mode', base, ['--mode=bogus'], r'--mode=bogus: value should be one of', None),
    ('unknown_flag', base, ['--workdrr=x'], r"Unknown command line flag 'workdrr'", None),
    ('stray_argument', base, ['prepare'], r'unexpected arguments: prepare', None),
    # ---- the workdir
    ('workdir_is_a_file', base, [], r'--workdir=.*w-workdir_is_a_file: is a file', workdir_file),
    ('read_only_workdir', base, [], r'--workdir=.*: cannot write there', read_only),
    (
      'corrupt_stage_record',
      base,
      [],
      r'stages/prepare\.json: damaged stage record \(invalid '
      r'JSON',
      record('{"stage": "prepare", "sect'),
    ),
    (
      'foreign_stage_record',
      base,
      [],
      r'stages/train\.json: not a gdiff stage record',
      record('["my", "list"]', 'train'),
    ),
    ('stages_is_a_file', base, [], r'stages: a file that gdiff did not write', stages_file),
    ('older_format', base, [], r'made by an older gdiff \(format 1\); use a new --workdir', older),
    (
      'foreign_embedding',
      base,
      [],
      r'/embedding: a folder that gdiff did not write is in the '
      r'way',
      user_folder('embedding'),
    ),
    ('foreign_data', base, [], r'/data: a folder that gdiff did not write', user_folder('data')),
    (
      'foreign_checkpoints',
      base,
      ['--mode=train'],
      r'/checkpoints: a folder that gdiff did '
      r'not write',
      user_folder('checkpoints'),
    ),
    (
      'foreign_samples',
      base,
      ['--mode=sample'],
      r'/samples: a folder that gdiff did not write',
      user_folder('samples'),
    ),
    (
      'foreign_report',
      base,
      ['--mode=evaluate'],
      r'/report: a folder that gdiff did not '
      r'write',
      user_folder('report'),
    ),
    (
      'input_changed',
      base,
      ['--mode=train'],
      r'input .*l\.tsv \(data\.labels\) changed since '
      r'the workdir .* was made; use a new --workdir',
      changed_labels,
    ),
    (
      'stage_not_run',
      base,
      ['--mode=sample'],
      r"stage 'prepare' has not finished there; run "
      r'--mode=prepare',
      None,
    ),
    # ---- genotype files
    ('missing_vcf', {'l.tsv': labels}, data, r'data\.vcf: no such file: .*c\.vcf', None),
    ('empty_vcf', {**base, 'c.vcf': b''}, data, r'c\.vcf: empty file', None),
    (
      'empty_vcf_gz',
      {'c.vcf.gz': bgzf([]), 'l.tsv': labels},
      ['--config.data.vcf={d}/c.vcf.gz', '--config.data.labels={d}/l.tsv'],
      r'c\.vcf\.gz: empty file',
      None,
    ),
    (
      'header_only',
      {**base, 'c.vcf': _text(HEADER)},
      data,
      r'c\.vcf: no variant records \(only a header\)',
      None,
    ),
    ('not_a_vcf', {**base, 'c.vcf': b'sample\tlabel\ns1\tA\n'}, data, r'c\.vcf:1: not a VCF', None),
    (
      'no_samples',
      {**base, 'c.vcf': _text(HEADER[:2] + ['\t'.join(HEADER[2].split('\t')[:8])])},
      data,
      r'c\.vcf:3: the VCF has no samples',
      None,
    ),
    (
      'no_gt_field',
      {
        **base,
        'c.vcf': _text(
          [h for h in HEADER if 'ID=GT' not in h]
          + _records(fmt='DP', calls=lambda i, r: ['7'] * 12)
        ),
      },
      data,
      r"c\.vcf:3: FORMAT 'DP' has no GT field",
      None,
    ),
    (
      'short_line',
      {**base, 'c.vcf': _text(lines[:8] + [lines[8].rsplit('\t', 2)[0]] + lines[9:])},
      data,
      r'c\.vcf:9: 19 tab-separated fields, expected 21',
      None,
    ),
    (
      'bad_pos',
      {**base, 'c.vcf': _text(swap(6, '\t130\t', '\t13o\t')(lines))},
      data,
      r"c\.vcf:7: POS '13o' is not a positive integer",
      None,
    ),
    (
      'unsorted',
      {**base, 'c.vcf': _text(lines[:5] + [lines[6], lines[5]] + lines[7:])},
      data,
      r'c\.vcf: not sorted: 1:120 after 1:130',
      None,
    ),
    (
      'allele_beyond_alt',
      {**base, 'c.vcf': _text(HEADER + _with_call(4, '0/3'))},
      data,
      r"c\.vcf:8: 1:140 sample s1: genotype '0/3' has an allele index beyond the record's 1 "
      r'ALT allele\(s\) \(or set data\.qc\.bad_calls=missing',
      None,
    ),
    (
      'one_two_at_single_alt',
      {**base, 'c.vcf': _text(HEADER + _with_call(0, '1/2'))},
      data,
      r"c\.vcf:4: 1:100 sample s1: genotype '1/2' has an allele index beyond",
      None,
    ),
    (
      'triploid',
      {**base, 'c.vcf': _text(HEADER + _with_call(2, '0/1/1'))},
      data,
      r"c\.vcf:6: 1:120 sample s1: genotype '0/1/…' has more than two alleles",
      None,
    ),
    (
      'malformed_call',
      {**base, 'c.vcf': _text(HEADER + _with_call(3, 'A/G'))},
      data,
      r"c\.vcf:7: 1:130 sample s1: genotype 'A/G' is not a genotype call",
      None,
    ),
    (
      'haploid_on_autosome',
      {**base, 'c.vcf': _text(HEADER + _with_call(1, '1'))},
      data,
      r"c\.vcf:5: 1:110 sample s1: genotype '1' is haploid on chromosome 1",
      None,
    ),
    (
      'all_haploid',
      {
        **base,
        'c.vcf': _text(
          HEADER + _records('chrX', calls=lambda i, rng: [str(x) for x in rng.integers(0, 2, 12)])
        ),
      },
      data,
      r'c\.vcf: all 20 variants are on X, Y or MT, which data\.sex_chromosomes=drop drops; '
      r'set data\.sex_chromosomes=diploid',
      None,
    ),
    (
      'chr_and_no_chr',
      {**base, 'c.vcf': _text(HEADER + _records('22', n=5) + _records('chr22', n=5, start=1000))},
      data,
      r"c\.vcf: chromosome '22' and 'chr22' both appear",
      None,
    ),
    (
      'truncated_at_block',
      {'c.vcf.gz': bgzf(blocks[:1], eof=False), 'l.tsv': labels},
      ['--config.data.vcf={d}/c.vcf.gz', '--config.data.labels={d}/l.tsv'],
      r'c\.vcf\.gz: no BGZF end-of-file block, so the file is truncated',
      None,
    ),
    (
      'truncated_mid_block',
      {'c.vcf.gz': bgzf(blocks)[: len(bgzf(blocks)) - 60], 'l.tsv': labels},
      ['--config.data.vcf={d}/c.vcf.gz', '--config.data.labels={d}/l.tsv'],
      r'c\.vcf\.gz: no BGZF end-of-file block',
      None,
    ),
    (
      'corrupt_gzip',
      {'c.vcf.gz': gzip.compress(good)[:-30], 'l.tsv': labels},
      ['--config.data.vcf={d}/c.vcf.gz', '--config.data.labels={d}/l.tsv'],
      r'c\.vcf\.gz: cannot read \(truncated or corrupt file\?\)',
      None,
    ),
    (
      'duplicate_sample_ids',
      {**base, 'c.vcf': _text(HEADER[:2] + [HEADER[2].replace('s12', 's1')] + _records())},
      data,
      r'c\.vcf: 1 duplicate sample ID\(s\): s1',
      None,
    ),
    (
      'nothing_after_qc',
      {**base, 'c.vcf': _text(HEADER + _records(calls=lambda i, r: ['0|0'] * 12))},
      data,
      r'c\.vcf: no variant left after QC \(20 read, dropped maf 20\)',
      None,
    ),
    (
      'plink_bed_size',
      {**plink(), 'l.tsv': labels, 'p.fam': plink(fam_rows=8)['p.fam']},
      ['--config.data.plink={d}/p', '--config.data.labels={d}/l.tsv'],
      r'p\.bed: 63 bytes, expected 43 for 8 samples x 20 variants \(\.fam/\.bim do not match',
      None,
    ),
    (
      'plink_missing_bim',
      {k: v for k, v in {**plink(), 'l.tsv': labels}.items() if k != 'p.bim'},
      ['--config.data.plink={d}/p', '--config.data.labels={d}/l.tsv'],
      r'data\.plink: no such file: .*p\.bim',
      None,
    ),
    (
      'plink_latin1_fam',
      {
        **plink(),
        'l.tsv': labels,
        'p.fam': plink()['p.fam'].replace(b's3\ts3', 'sé\tsé'.encode('latin-1')),
      },
      ['--config.data.plink={d}/p', '--config.data.labels={d}/l.tsv'],
      r'p\.fam is not UTF-8 \(line 3\): re-save it as UTF-8',
      None,
    ),
    # ---- labels and splits
    ('labels_missing_file', {'c.vcf': good}, data, r'data\.labels: no such file: .*l\.tsv', None),
    (
      'labels_option_unset',
      base,
      ['--config.data.vcf={d}/c.vcf'],
      r'data\.labels: required with data\.vcf',
      None,
    ),
    ('labels_empty_file', {**base, 'l.tsv': b''}, data, r'l\.tsv: empty file', None),
    (
      'labels_latin1',
      {**base, 'l.tsv': _labels_text().replace(b'\tB\n', '\tBé\n'.encode('latin-1'), 1)},
      data,
      r'l\.tsv is not UTF-8 \(byte 0xe9 on line 8\): re-save it as UTF-8',
      None,
    ),
    (
      'labels_na',
      {**base, 'l.tsv': _labels_text().replace(b's4\tA', b's4\tNA')},
      data,
      r"l\.tsv:5: 'label' of sample s4 is 'NA', a missing value",
      None,
    ),
    (
      'labels_empty_value',
      {**base, 'l.tsv': _labels_text().replace(b's4\tA', b's4\t')},
      data,
      r"l\.tsv:5: empty 'label' for sample s4",
      None,
    ),
    (
      'labels_unbalanced_quote',
      {**base, 'l.tsv': _labels_text().replace(b's4\tA', b's4\t"A')},
      data,
      r'l\.tsv:5: unbalanced quote in \'"A\'',
      None,
    ),
    (
      'labels_no_column',
      {**base, 'l.tsv': _labels_text(header='sample\tstatus')},
      data,
      r"l\.tsv:1: no column 'label' in the header \(sample, status\)",
      None,
    ),
    (
      'labels_field_count',
      {**base, 'l.tsv': _labels_text().replace(b's4\tA', b's4\tA\tx')},
      data,
      r'l\.tsv:5: 3 tab-separated fields, the header has 2',
      None,
    ),
    (
      'labels_extra_samples',
      {**base, 'l.tsv': _labels_text() + b'x1\tA\n'},
      data,
      r'l\.tsv: 1 sample\(s\) not in the genotypes .*c\.vcf: x1',
      None,
    ),
    (
      'labels_missing_samples',
      {**base, 'l.tsv': _labels_text([f'{s}\t{c}' for s, c in zip(SAMPLES[:-2], CLASSES)])},
      data,
      r'l\.tsv: 2 sample\(s\) of the genotypes .*c\.vcf are missing here: s11, s12',
      None,
    ),
    (
      'labels_repeated_sample',
      {**base, 'l.tsv': _labels_text() + b's1\tA\n'},
      data,
      r'l\.tsv:14: sample s1 repeated \(first on line 2\)',
      None,
    ),
    (
      'class_too_small',
      {
        **base,
        'l.tsv': _labels_text([f'{s}\t{"A" if i < 11 else "B"}' for i, s in enumerate(SAMPLES)]),
      },
      data,
      r"class 'B' has 1 sample\(s\), too few to split",
      None,
    ),
    (
      'split_file_value',
      {
        **base,
        's.tsv': (
          'sample\tsplit\n'
          + ''.join(f'{s}\t{"tr" if i == 2 else "train"}\n' for i, s in enumerate(SAMPLES))
        ).encode(),
      },
      data + ['--config.data.split_file={d}/s.tsv'],
      r"s\.tsv:4: split 'tr' is not one of train, val, test",
      None,
    ),
    (
      'split_file_missing',
      base,
      data + ['--config.data.split_file={d}/nope.tsv'],
      r'data\.split_file: no such file: .*nope\.tsv',
      None,
    ),
  ]
  return c


CASES = _cases()


def _tree(path):
  """sha256 over every name (hidden too), kind and file content under `path`."""
  h = hashlib.sha256()
  if not os.path.lexists(path):
    return 'absent'
  if not os.path.isdir(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()
  for root, dirs, files in os.walk(path):
    dirs.sort()
    h.update(f'D {os.path.relpath(root, path)} {oct(os.stat(root).st_mode)}\n'.encode())
    for name in sorted(files):
      with open(os.path.join(root, name), 'rb') as f:
        h.update(f'F {name} '.encode() + hashlib.sha256(f.read()).digest())
  return h.hexdigest()


@pytest.mark.parametrize('name, files, flags, pattern, setup', CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_the_workdir_untouched(
  tmp_path, capfd, name, files, flags, pattern, setup
):
  if setup is not None and setup.__name__ == 'read_only' and os.geteuid() == 0:
    pytest.skip('root writes into a read-only folder (see test_unwritable_parent_folder)')
  d = str(tmp_path / 'in')
  os.makedirs(d)
  for fname, content in files.items():
    with open(os.path.join(d, fname), 'wb') as f:
      f.write(content)
  w = str(tmp_path / f'w-{name}')
  os.makedirs(os.path.join(w, 'notes'))
  with open(os.path.join(w, 'notes', 'keep.txt'), 'w') as f:
    f.write('my notes\n')
  if setup is not None:
    setup(w, d)
  before = _tree(w)
  inputs_before = _tree(d)
  argv = ['gdiff', f'--config={CONFIG}', f'--workdir={w}', '--mode=prepare']
  argv += [f.format(d=d) for f in flags]
  capfd.readouterr()
  try:
    with pytest.raises(SystemExit) as exit_info:
      main.run(argv)
    err = capfd.readouterr().err
    lines = err.splitlines()
    assert exit_info.value.code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith('gdiff: error: '), err
    assert re.search(pattern, lines[0]), f'{lines[0]!r} does not match {pattern!r}'
    assert _tree(w) == before, 'the workdir changed'
    if name != 'input_changed':  # that case changes an input on purpose, before the run
      assert _tree(d) == inputs_before, 'an input file changed'
  finally:
    if os.path.isdir(w):
      os.chmod(w, 0o755)


def test_unwritable_parent_folder(capfd):
  parent = '/sys/gdiff-test-parent'  # sysfs refuses new folders, even to root
  if not os.path.isdir('/sys') or os.path.exists(parent):
    pytest.skip('no sysfs here')
  with pytest.raises(SystemExit) as exit_info:
    main.run(
      [
        'gdiff',
        f'--config={CONFIG}',
        f'--workdir={parent}/w',
        '--mode=all',
        '--config.train.num_steps=1',
      ]
    )
  lines = capfd.readouterr().err.splitlines()
  assert exit_info.value.code == 2 and len(lines) == 1
  assert re.search(r'--workdir=/sys/gdiff-test-parent/w: cannot write there', lines[0]), lines
  assert not os.path.exists(parent)


def test_the_real_command_line(tmp_path):
  """Exit code 2 and one stderr line from `python -m gdiff.main`; its log lines go to stdout."""
  d = tmp_path / 'in'
  d.mkdir()
  (d / 'c.vcf').write_bytes(_text(HEADER + _with_call(4, '0/3')))
  (d / 'l.tsv').write_bytes(_labels_text())
  runs = {
    'flag': ['--config.data.vfc=x'],
    'data': [f'--config.data.vcf={d}/c.vcf', f'--config.data.labels={d}/l.tsv'],
  }
  for name, flags in runs.items():
    w = tmp_path / f'w-{name}'
    proc = subprocess.run(
      [
        sys.executable,
        '-m',
        'gdiff.main',
        f'--config={CONFIG}',
        f'--workdir={w}',
        '--mode=prepare',
        *flags,
      ],
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=120,
      env=dict(os.environ, JAX_PLATFORMS='cpu'),
    )
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith('gdiff: error: ')
    if name == 'data':
      assert "genotype '0/3'" in lines[0] and 'I stage prepare' in proc.stdout
      assert os.listdir(w) == []  # created, then nothing left in it


def test_leniency_counts_bad_calls_and_haploid_records_drop_under_their_own_reason(tmp_path):
  d = tmp_path / 'in'
  d.mkdir()
  males = lambda i, rng: [
    str(x) if k < 6 else f'{x}/{y}'  # 6 haploid males, 6 females
    for k, (x, y) in enumerate(rng.integers(0, 2, (12, 2)))
  ]
  (d / 'c.vcf').write_bytes(
    _text(HEADER + _with_call(4, '0/3') + _records('X', n=7, calls=males, start=1000))
  )
  (d / 'l.tsv').write_bytes(_labels_text())
  w = tmp_path / 'w'
  main.run(
    [
      'gdiff',
      f'--config={CONFIG}',
      f'--workdir={w}',
      '--mode=prepare',
      f'--config.data.vcf={d}/c.vcf',
      f'--config.data.labels={d}/l.tsv',
      '--config.data.qc.bad_calls=missing',
      '--config.data.qc.min_call_rate=0.5',
      '--config.data.qc.min_maf=0.0',
      '--config.data.qc.min_hwe_p=0.0',
    ]
  )
  manifest = json.loads((w / 'data' / 'manifest.json').read_text())
  assert manifest['bad_calls'] == {'allele_beyond_alt': 1, 'ploidy': 0, 'malformed': 0}
  assert manifest['dropped']['sex_chromosome'] == 7 and manifest['variants_kept'] == 20
  assert manifest['missing_filled'] == 1  # the bad call, read as missing, then filled
  assert manifest['kept_per_chromosome'] == {'1': 20}
