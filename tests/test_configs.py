"""The config files: variants build, a misspelt one names the known ones, values are pinned."""

import importlib

import pytest

from configs import als, base, dense, kg1
from gdiff.data import simulate


def _flat(tree: dict, prefix: str = '') -> dict:
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(_flat(value, f'{prefix}{key}.'))
    else:
      out[f'{prefix}{key}'] = value
  return out


def _differences(got: dict, want: dict) -> list[str]:
  return [
    f'{k}: {got.get(k, "<missing>")!r} != pinned {want.get(k, "<missing>")!r}'
    for k in sorted(set(got) | set(want))
    if got.get(k, object()) != want.get(k, object())
  ]


# Every value of `configs/base.py:get_config()` and what each cohort config and variant
# overrides. They pin the defaults: update them when a default changes on purpose, and
# record why in docs/decisions.md.
BASE = {
  'ar.ancestry_pcs': 0,
  'ar.block_snps': 256,
  'ar.context_snps': (16, 32),
  'ar.dp.accountant': 'pld',
  'ar.dp.batch_people': 256,
  'ar.dp.clip_norm': 1.0,
  'ar.dp.context_snps': 16,
  'ar.dp.delta': 0.0,
  'ar.dp.enabled': False,
  'ar.dp.learning_rate': 0.05,
  'ar.dp.microbatch': 32,
  'ar.dp.noise_multiplier': 0.0,
  'ar.dp.steps': 400,
  'ar.dp.target_epsilon': 3.0,
  'ar.l2_class': 0.1,
  'ar.l2_shared': 0.01,
  'ar.max_iter': 100,
  'ar.segments': 'genome',
  'ar.solver': 'lbfgs',
  'ar.per_class': True,
  'ar.tol': 1e-05,
  'ar.unit': 'auto',
  'generator': 'ar',
  'data.chunk_variants': 5000,
  'data.ingest_regions_per_worker': 3,
  'data.ingest_workers': 0,
  'data.label_column': 'label',
  'data.labels': '',
  'data.pgen': '',
  'data.plink': '',
  'data.qc.bad_calls': 'error',
  'data.qc.hwe_within': 'class',
  'data.qc.min_call_rate': 0.95,
  'data.qc.min_hwe_p': 1e-05,
  'data.qc.min_maf': 0.01,
  'data.sex_chromosomes': 'drop',
  'data.shard_variants': 20000,
  'data.simulate.contig_length': 2000000,
  'data.simulate.demography': 'OutOfAfrica_4J17',
  'data.simulate.heritability': 0.6,
  'data.simulate.kind': 'populations',
  'data.simulate.max_snps_per_contig': 2000,
  'data.simulate.min_maf': 0.05,
  'data.simulate.num_causal': 50,
  'data.simulate.num_contigs': 2,
  'data.simulate.num_samples': 600,
  'data.simulate.population': 'CEU',
  'data.simulate.populations': ('YRI', 'CEU', 'CHB', 'JPT'),
  'data.simulate.prevalence': 0.31,
  'data.simulate.recombination_rate': 1e-08,
  'data.simulate.samples_per_population': (150, 150, 150, 150),
  'data.simulate.seed': 1,
  'data.simulate.species': 'HomSap',
  'data.split_file': '',
  'data.split_seed': 0,
  'data.test_fraction': 0.1,
  'data.val_fraction': 0.1,
  'data.vcf': '',
  'diffusion.label_dropout': 0.1,
  'diffusion.num_steps': 500,
  'diffusion.prediction': 'eps',
  'diffusion.schedule': 'cosine',
  'embedding.annotation': '',
  'embedding.decode': 'calibrated',
  'embedding.fixed_components': 8,
  'embedding.group_multiple': 8,
  'embedding.grouping': 'window',
  'embedding.rule': 'paper',
  'embedding.slots': 8,
  'embedding.window_snps': 32,
  'embedding.window_span_bp': 0,
  'evaluate.augmentation_classifier': 'mlp',
  'evaluate.augmentation_fractions': (0.05, 0.1, 0.2, 0.5),
  'evaluate.baseline_seeds': 0,
  'evaluate.baselines': ('independent', 'gaussian', 'mosaic', 'resample'),
  'evaluate.block_size': 1024,
  'evaluate.workers': 2,
  'evaluate.classifier_steps': 300,
  'evaluate.classifiers': ('logreg', 'mlp', 'cnn', 'transformer'),
  'evaluate.detection_max_people': 1000,
  'evaluate.genotype_classifiers': ('logreg', 'hgb'),
  'evaluate.genotype_max_snps': 256,
  'evaluate.exposed_people': 50,
  'evaluate.genotype_privacy': True,
  'evaluate.gwas': True,
  'evaluate.holdout': 'test',
  'evaluate.ld_max_distance_snps': 50,
  'evaluate.mosaic_segment_snps': (25, 50, 100, 200, 400),
  'evaluate.num_pcs': 10,
  'evaluate.privacy_max_people': 0,
  'evaluate.seeds': 3,
  'input.batch_size': 32,
  'input.data_shards': 0,
  'input.shuffle_seed': 0,
  'input.worker_count': 0,
  'model.cnn_attention_factors': (32, 64),
  'model.cnn_base_width': 64,
  'model.cnn_channel_mults': (1, 1, 1, 1, 2, 2, 3, 4),
  'model.cnn_num_res_blocks': 1,
  'model.cnn_resample': 'pool',
  'model.dropout': 0.0,
  'model.dtype': 'float32',
  'model.gate_hidden': 64,
  'model.mlp_widths': (1024, 512, 256),
  'model.name': 'mlp_cnn',
  'model.norm_groups': 32,
  'model.num_heads': 4,
  'model.transformer_dim': 384,
  'model.transformer_genes_per_token': 16,
  'model.transformer_heads': 6,
  'model.transformer_layers': 12,
  'sample.batch_size': 256,
  'sample.calibration_people': 4096,
  'sample.checkpoint': 'best',
  'sample.class_counts': '',
  'sample.clip_x0': 10.0,
  'sample.decode_thresholds': 'matched',
  'sample.eta': 1.0,
  'sample.gate.block_size': 1024,
  'sample.gate.distance_min_heldout': 20,
  'sample.gate.distance_percentile': 1.0,
  'sample.gate.enabled': True,
  'sample.gate.kinship_degree': 2,
  'sample.gate.kinship_min_snps': 1000,
  'sample.gate.kinship_min_span_mb': 100.0,
  'sample.gate.max_fraction': 0.1,
  'sample.gate.max_rounds': 10,
  'sample.guidance': 0.0,
  'sample.method': 'ddim',
  'sample.num': 0,
  'sample.out': '',
  'sample.seed': 0,
  'sample.steps': 50,
  'sample.temperature': 1.0,
  'sample.use_ema': True,
  'seed': 0,
  'train.checkpoint_every': 250,
  'train.ema_decay': 0.999,
  'train.eval_every': 250,
  'train.grad_clip': 1.0,
  'train.keep_checkpoints': 3,
  'train.learning_rate': 0.0002,
  'train.log_every': 50,
  'train.num_steps': 2000,
  'train.recombine_prob': 1.0,
  'train.recombine_segment_groups': 0.0,
  'train.warmup_steps': 100,
  'train.weight_decay': 0.0,
}
_ALS_SMALL = {
  'data.simulate.kind': 'case_control',
  'data.simulate.num_samples': 4800,
  'data.simulate.heritability': 0.9,
  'data.simulate.num_causal': 3,
}
_CPU_SMALL_MODEL = {
  'model.mlp_widths': (256, 128, 64),
  'model.norm_groups': 8,
  'model.cnn_base_width': 32,
  'model.cnn_channel_mults': (1, 2, 2),
  'model.cnn_num_res_blocks': 1,
  'model.cnn_attention_factors': (4,),
  'model.cnn_resample': 'resblock',
  'model.transformer_layers': 2,
  'model.transformer_dim': 64,
  'model.transformer_heads': 4,
}
_PAPER_RUN = {
  'generator': 'diffusion',
  'model.cnn_num_res_blocks': 3,
  'model.cnn_resample': 'resblock',
  'embedding.group_multiple': 1024,
  'sample.method': 'ddpm',
  'train.checkpoint_every': 1000,
  'train.eval_every': 1000,
}
_DIFFUSION = {
  **_CPU_SMALL_MODEL,
  'generator': 'diffusion',
  'train.learning_rate': 1e-3,
  'train.recombine_segment_groups': 32.0,
}
_KG1 = {'data.simulate.samples_per_population': (600, 600, 600, 600)}
_DENSE = {
  'data.simulate.contig_length': 1_000_000,
  'data.simulate.demography': 'AshkSub_7G19',
  'data.simulate.max_snps_per_contig': 0,
  'data.simulate.min_maf': 0.01,
  'data.simulate.populations': ('CEU', 'ME', 'WAJ', 'EAJ'),
  'data.simulate.seed': 3,
}
OVERRIDES = {
  ('als', 'default'): _ALS_SMALL,
  ('als', 'diffusion'): {**_ALS_SMALL, **_DIFFUSION, 'train.num_steps': 9000, 'sample.eta': 0.0},
  ('als', 'paper'): {
    **_ALS_SMALL,
    **_PAPER_RUN,
    'train.num_steps': 30_000,
    'train.recombine_segment_groups': 32.0,
    'sample.eta': 0.0,
  },
  ('kg1', 'default'): _KG1,
  ('kg1', 'diffusion'): {**_KG1, **_DIFFUSION, 'train.num_steps': 4500},
  ('kg1', 'paper'): {
    **_KG1,
    **_PAPER_RUN,
    'train.num_steps': 7000,
    'train.recombine_segment_groups': 32.0,
  },
  ('dense', 'default'): _DENSE,
  ('dense', 'diffusion'): {**_DENSE, **_DIFFUSION, 'train.num_steps': 4500},
  ('dense', 'paper'): {**_DENSE, **_PAPER_RUN, 'train.num_steps': 5000},
}
MODULES = {'als': als, 'kg1': kg1, 'dense': dense}


def test_base_values_are_pinned():
  assert not _differences(_flat(base.get_config().to_dict()), BASE)


@pytest.mark.parametrize('module,variant', sorted(OVERRIDES))
def test_config_values_are_pinned(module, variant):
  got = _flat(MODULES[module].get_config(variant).to_dict())
  assert not _differences(got, {**BASE, **OVERRIDES[module, variant]})


def test_populations_cohorts_leave_the_case_control_keys_to_base():
  for module in (kg1, dense):
    got = module.get_config().data.simulate
    for key in simulate.UNUSED_KEYS['populations']:
      assert got[key] == base.get_config().data.simulate[key], key


@pytest.mark.parametrize('module', [als, kg1, dense])
def test_variants_build_from_the_default(module):
  default = module.get_config()
  assert module.get_config('default').to_dict() == default.to_dict()
  assert default.generator == 'ar'
  diffusion = module.get_config('diffusion')
  assert diffusion.generator == 'diffusion' and diffusion.train.recombine_segment_groups > 0
  paper = module.get_config('paper')
  assert paper.generator == 'diffusion'
  assert paper.model.to_dict() == base.paper_networks(base.get_config()).model.to_dict()
  assert (paper.model.cnn_num_res_blocks, paper.model.cnn_resample) == (3, 'resblock')
  # Each variant changes only what it says; the cohort stays the module's own.
  for variant in (diffusion, paper):
    assert variant.data.to_dict() == default.data.to_dict()


@pytest.mark.parametrize('module', [als, kg1, dense])
def test_unknown_variant_names_the_known_ones(module):
  with pytest.raises(ValueError, match='unknown variant .papr.*default, diffusion, .*paper'):
    module.get_config('papr')


@pytest.mark.parametrize('name', ['als', 'kg1'])
def test_faithful_is_the_diffusion_recipe_without_recombination(name):
  module = importlib.import_module(f'configs.{name}')
  c, d = module.get_config('faithful'), module.get_config('diffusion')
  assert (c.generator, c.train.num_steps, c.train.recombine_segment_groups) == (
    'diffusion',
    4500,
    0,
  )
  assert c.sample.eta == 1.0 and c.model == d.model


def test_no_cohort_config_imports_another():
  import ast
  import os

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  for name in MODULES:
    tree = ast.parse(open(os.path.join(root, 'configs', f'{name}.py')).read())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert imported <= {'base'}, (name, imported)
