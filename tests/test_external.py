"""Tests for gdiff.evaluate.external and gdiff.api.evaluate: any VCF judged against a workdir."""

import json

import numpy as np
import pytest
import test_report

from gdiff import api, export
from gdiff import workdir as wd
from gdiff.data import cohort as cohort_lib
from gdiff.errors import InputError
from gdiff.evaluate import external, families, run


@pytest.fixture
def workdir(tmp_path, monkeypatch):
  codec = test_report._workdir(tmp_path / 'w')
  monkeypatch.setattr(run, '_load_codec', lambda path: codec)
  config = test_report._config()
  config.evaluate.baselines = ('independent',)
  config.evaluate.genotype_classifiers = ('logreg',)
  config.evaluate.augmentation_classifier = ''
  wd.mark_done(config, str(tmp_path / 'w'), 'evaluate')
  return str(tmp_path / 'w'), config


def _mosaic_vcf(w, config, out_dir, swap=(), drop=()):
  """The mosaic baseline of workdir `w` as a VCF + labels TSV; SNPs in `swap` are written
  with REF and ALT exchanged (dosage 2 - d), SNPs in `drop` left out."""
  ctx = run.load(config, w)
  cohort = families.baseline(ctx, 'mosaic@40', 'mosaic', segment_snps=40.0)
  variants = cohort_lib.load_cohort(f'{w}/data').variants()
  dosage = cohort.dosage_NxS.copy()
  ref, alt = variants.ref.astype(object), variants.alt.astype(object)
  for j in swap:
    ref[j], alt[j] = alt[j], ref[j]
    dosage[:, j] = 2 - dosage[:, j]
  keep = np.setdiff1d(np.arange(len(variants)), drop)
  written = cohort_lib.Variants(variants.chrom, variants.pos, variants.id, ref, alt).take(keep)
  samples = export.sample_ids(len(dosage))
  labels = np.asarray(ctx.classes)[cohort.label_ids_N]
  export.write_cohort(
    str(out_dir),
    dosage[:, keep],
    written,
    samples,
    labels,
    ctx.classes,
    prefix='mosaic',
    formats=('vcf', 'labels'),
  )
  return str(out_dir / 'mosaic.vcf.gz'), cohort


def test_api_evaluate_scores_a_vcf_against_the_workdir(workdir, tmp_path):
  w, config = workdir
  vcf, cohort = _mosaic_vcf(w, config, tmp_path / 'vcf', swap=(3, 50))
  # SNPs matched by (chrom, pos, ref, alt): the swapped ones come back flipped.
  variants = cohort_lib.load_cohort(f'{w}/data').variants()
  syn = external.read_synthetic(vcf, variants, ('a', 'b'))
  np.testing.assert_array_equal(syn['dosage'], cohort.dosage_NxS)
  np.testing.assert_array_equal(syn['label_ids'], cohort.label_ids_N)

  metrics = api.evaluate(real=w, synthetic=vcf, out=str(tmp_path / 'out'))
  assert list(metrics['methods']) == ['synthetic', 'independent']
  assert metrics['provenance']['synthetic_file'].endswith('mosaic.vcf.gz')
  saved = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
  assert saved['judged'] == 'synthetic' and saved['verdict'].startswith('Realism: ')
  # The same cohort judged from the arrays gives the same numbers.
  ctx = run.load(config, w)
  direct, _ = families.judge(ctx, cohort, {'realism': (families.realism_metrics,)})
  assert metrics['methods']['synthetic']['realism']['af_r'] == pytest.approx(
    direct['realism']['af_r']
  )
  md = (tmp_path / 'out' / 'report.md').read_text()
  assert '**Verdict.**' in md and '| synthetic |' in md


def test_api_evaluate_refuses_a_vcf_without_every_real_snp(workdir, tmp_path):
  w, config = workdir
  vcf, _ = _mosaic_vcf(w, config, tmp_path / 'vcf', drop=(7,))
  with pytest.raises(InputError, match=r'1 of the real cohort.s 80 SNPs are not in the file'):
    api.evaluate(real=w, synthetic=vcf, out=str(tmp_path / 'out'))
  assert not (tmp_path / 'out').exists()


def test_workdir_config_keeps_recorded_values_and_defaults_for_newer_keys(workdir):
  w, _ = workdir
  path = f'{w}/stages/evaluate.json'
  with open(path) as f:
    record = json.load(f)
  del record['sections']['evaluate']['gwas']  # a record made before the option existed
  with open(path, 'w') as f:
    json.dump(record, f)
  config = external.workdir_config(w)
  assert config.evaluate.classifier_steps == 20 and config.evaluate.baselines == ('independent',)
  assert config.evaluate.gwas is True  # the default
  run.check_config(config.evaluate)
