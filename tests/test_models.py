"""Tests of gdiff.models: shapes, masking, conditioning, config checks, paper sizes."""

import functools
import math

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import base
from gdiff import models
from gdiff.errors import InputError
from gdiff.models import layers

B, G, C, K = 3, 16, 8, 2


def tiny_config(name):
  c = base.get_config()
  m = c.model
  m.name = name
  m.mlp_widths = (32, 16, 8)
  m.norm_groups = 4
  m.cnn_base_width = 8
  m.cnn_channel_mults = (1, 2)
  m.cnn_num_res_blocks = 1
  m.cnn_attention_factors = (2,)
  m.num_heads = 2
  m.gate_hidden = 8
  m.transformer_genes_per_token = 4
  m.transformer_layers = 1
  m.transformer_dim = 16
  m.transformer_heads = 2
  return c


def mask():
  m = np.ones((G, C), bool)
  m[:, 6:] = False
  m[-2:] = False
  return m


def random_params(mc, seed):
  """Random non-zero weights of the right shapes, drawn on the host.

  Avoids compiling the initialisers (slow on a busy 2-core CPU); real
  initialisation is covered by tests/test_train.py.
  """
  shapes = jax.eval_shape(functools.partial(models.init_params, mc), jax.random.key(0))
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: (0.3 * rng.standard_normal(s.shape)).astype(np.float32), shapes)


@pytest.mark.parametrize('name', sorted(models.MODELS))
def test_network_shapes_mask_and_conditioning(name):
  mc = models.model_config(tiny_config(name), G, C, K, mask_GxC=mask())
  model = models.build(mc)
  x = jax.random.normal(jax.random.key(0), (B, G, C))
  t = jnp.array([0.1, 0.5, 0.9])
  label = jnp.array([0, 1, K], jnp.int32)  # K is the null label
  fn = jax.jit(lambda p, x, t, y: model.apply({'params': p}, x, t, y, train=False))
  params = random_params(mc, 0)
  # The input is added back: an all-zero network is the masked identity.
  zero = jax.tree.map(np.zeros_like, params)
  np.testing.assert_allclose(fn(zero, x, t, label), x * mask(), atol=1e-6)
  eps = fn(params, x, t, label)
  assert eps.shape == (B, G, C) and eps.dtype == jnp.float32
  assert np.all(np.asarray(eps)[:, ~mask()] == 0.0)
  assert np.all(np.abs(np.asarray(eps)[:, mask()]) > 0.0)
  assert not np.allclose(eps, fn(params, x, t, jnp.array([1, 0, 0], jnp.int32)), atol=1e-4)
  assert not np.allclose(eps, fn(params, x, 1.0 - t, label), atol=1e-4)


def test_cnn_pool_resampling_has_no_resample_blocks_and_keeps_the_contract():
  """cnn_resample='pool': no ResBlock halves or doubles the axis; shapes and mask as before."""
  config = tiny_config('cnn')
  blocks = {}
  for resample in ('resblock', 'pool'):
    config.model.cnn_resample = resample
    mc = models.model_config(config, G, C, K, mask_GxC=mask())
    params = random_params(mc, 0)
    blocks[resample] = {k for k in params if 'resample' in k}
    x = jax.random.normal(jax.random.key(0), (B, G, C))
    out = models.build(mc).apply(
      {'params': params}, x, jnp.array([0.1, 0.5, 0.9]), jnp.zeros(B, int)
    )
    assert out.shape == (B, G, C) and np.all(np.asarray(out)[:, ~mask()] == 0.0)
  assert blocks == {'resblock': {'down_0_resample', 'up_1_resample'}, 'pool': set()}
  config.model.cnn_resample = 'conv'
  with pytest.raises(InputError, match='model.cnn_resample'):
    models.model_config(config, G, C, K)


def test_cnn_needs_divisible_group_count():
  config = tiny_config('cnn')
  config.model.cnn_channel_mults = (1, 1, 2, 2)  # 3 downsamplings: G % 8 == 0
  models.model_config(config, 24, C, K)
  with pytest.raises(InputError, match='embedding.group_multiple'):
    models.model_config(config, 20, C, K)


def test_transformer_pads_groups_to_whole_tokens():
  mc = models.model_config(tiny_config('transformer'), 18, C, K)  # 18 = 4 tokens of 4 + 2
  params = random_params(mc, 1)
  assert params['tokens_in']['kernel'].shape == (5, 4 * C, 16)
  x = jax.random.normal(jax.random.key(2), (2, 18, C))
  out = jax.jit(models.build(mc).apply)(
    {'params': params}, x, jnp.zeros(2), jnp.zeros(2, jnp.int32)
  )
  assert out.shape == (2, 18, C)


def test_unknown_model_and_bad_mask_are_input_errors():
  config = tiny_config('unet3d')
  with pytest.raises(InputError, match='model.name'):
    models.model_config(config, G, C, K)
  with pytest.raises(InputError, match='mask'):
    models.model_config(tiny_config('mlp'), G, C, K, mask_GxC=np.ones((G, C + 1), bool))


def test_model_config_is_hashable_and_keeps_the_mask():
  mc = models.model_config(tiny_config('mlp'), G, C, K, mask_GxC=mask())
  again = models.model_config(tiny_config('mlp'), G, C, K, mask_GxC=mask())
  assert hash(mc) == hash(again) and mc == again
  np.testing.assert_array_equal(mc.mask_GxC, mask().astype(np.float32))


@pytest.mark.parametrize(
  'name,genes,millions',
  [
    ('mlp', 18_432, 310),
    ('cnn', 18_432, 18),
    ('mlp_cnn', 18_432, 328),
    ('mlp', 1024, 24.7),
    ('mlp_cnn', 1024, 43.3),
  ],
)
def test_parameter_counts_match_the_paper(name, genes, millions):
  """The paper's sizes (`base.paper_networks`); counted with eval_shape, nothing materialised."""
  config = base.paper_networks(base.get_config())
  config.model.name = name
  n = models.count_params(models.model_config(config, genes, 8, 2))
  assert n / 1e6 == pytest.approx(millions, rel=0.04)


def _flax_and_fused_norm(shape, groups, seed):
  """Random input and norm parameters, the fused GroupNorm and flax's, same params."""
  rng = np.random.default_rng(seed)
  # A large common offset: E[x^2] - E[x]^2 must still match flax's (which uses the same formula).
  x = jnp.asarray(3.0 + rng.standard_normal(shape).astype(np.float32))
  f = shape[-1]
  params = {
    'scale': jnp.asarray(rng.standard_normal(f).astype(np.float32)),
    'bias': jnp.asarray(rng.standard_normal(f).astype(np.float32)),
  }
  fused = layers.GroupNorm(num_groups=groups)
  ref = flax.linen.GroupNorm(num_groups=groups, epsilon=1e-5)
  return x, params, fused, ref


@pytest.mark.parametrize('shape,groups', [((4, 32, 16), 4), ((3, 64), 8), ((2, 8, 6), 3)])
def test_fused_group_norm_equals_flax_group_norm(shape, groups):
  """The one-pass GroupNorm computes flax's GroupNorm (values and gradients), same parameters."""
  x, params, fused, ref = _flax_and_fused_norm(shape, groups, 0)
  assert jax.tree.map(jnp.shape, fused.init(jax.random.key(0), x)['params']) == jax.tree.map(
    jnp.shape, ref.init(jax.random.key(0), x)['params']
  )  # same names and shapes: checkpoints written before load unchanged
  weight = jnp.asarray(np.random.default_rng(1).standard_normal(shape).astype(np.float32))

  def loss(module, p, x):
    return jnp.sum(jnp.sin(module.apply({'params': p}, x)) * weight)

  np.testing.assert_allclose(
    fused.apply({'params': params}, x), ref.apply({'params': params}, x), atol=2e-5, rtol=1e-5
  )
  g_fused = jax.grad(functools.partial(loss, fused), argnums=(0, 1))(params, x)
  g_ref = jax.grad(functools.partial(loss, ref), argnums=(0, 1))(params, x)
  for a, b in zip(jax.tree.leaves(g_fused), jax.tree.leaves(g_ref)):
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)


def test_fused_group_norm_folds_film_and_has_the_known_answer():
  x, params, fused, ref = _flax_and_fused_norm((4, 32, 16), 4, 2)
  rng = np.random.default_rng(3)
  scale, shift = (jnp.asarray(rng.standard_normal((4, 16)).astype(np.float32)) for _ in range(2))
  want = ref.apply({'params': params}, x) * (1 + scale[:, None]) + shift[:, None]
  got = fused.apply({'params': params}, x, scale, shift)
  np.testing.assert_allclose(got, want, atol=5e-5, rtol=1e-5)
  # By hand: one group over [[0, 2], [4, 6]]: mean 3, variance 5.
  one = layers.GroupNorm(num_groups=1)
  x1 = jnp.array([[[0.0, 2.0], [4.0, 6.0]]])
  p1 = {'scale': jnp.array([1.0, 2.0]), 'bias': jnp.array([0.0, 1.0])}
  want1 = (np.array([[0.0, 2.0], [4.0, 6.0]]) - 3) / np.sqrt(5 + 1e-5) * [1, 2] + [0, 1]
  np.testing.assert_allclose(one.apply({'params': p1}, x1)[0], want1, rtol=1e-6)


class _ReferenceNorm(flax.linen.GroupNorm):
  """flax's GroupNorm, then FiLM as a separate step: what the networks computed before fusing."""

  @flax.linen.compact
  def __call__(self, x, film_scale_BxF=None, film_shift_BxF=None):
    y = super().__call__(x)
    if film_scale_BxF is None:
      return y
    return y * (1 + film_scale_BxF[:, None]) + film_shift_BxF[:, None]


@pytest.mark.parametrize('name', ['cnn', 'mlp'])
def test_networks_with_the_fused_norm_equal_the_unfused_ones(name, monkeypatch):
  """Whole networks, outputs and parameter gradients: fused norm vs flax's norm + FiLM."""
  mc = models.model_config(tiny_config(name), G, C, K, mask_GxC=mask())
  params = random_params(mc, 4)
  x = jax.random.normal(jax.random.key(5), (B, G, C))
  t, label = jnp.array([0.1, 0.5, 0.9]), jnp.array([0, 1, K], jnp.int32)

  def value_and_grad():
    model = models.build(mc)
    loss = lambda p: jnp.sum(jnp.sin(model.apply({'params': p}, x, t, label)))
    return jax.jit(jax.value_and_grad(loss))(params)

  fused = value_and_grad()
  monkeypatch.setattr(
    layers,
    'group_norm',
    lambda groups, channels, dtype=jnp.float32, name=None: _ReferenceNorm(
      num_groups=math.gcd(groups, channels), epsilon=1e-5, dtype=dtype, name=name
    ),
  )
  reference = value_and_grad()
  assert jax.tree.structure(fused) == jax.tree.structure(reference)
  for a, b in zip(jax.tree.leaves(fused), jax.tree.leaves(reference)):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)
