"""Tests of gdiff.diffusion: schedules, q_sample and the masked epsilon loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdiff import diffusion

G, C, K = 12, 8, 3


def mask():
  m = np.ones((G, C), np.float32)
  m[:, 4:] = 0.0  # half the entries are padding
  return m


def test_cosine_schedule_matches_closed_form():
  s = diffusion.make_schedule('cosine', 500)
  f = lambda t: np.cos((t / 500 + 0.008) / 1.008 * np.pi / 2) ** 2
  np.testing.assert_allclose(s.alphas_cumprod[:400], (f(np.arange(1, 401)) / f(0)), rtol=1e-4)
  assert float(s.betas.max()) == pytest.approx(0.999)  # capped, as in the paper
  assert np.all(np.diff(np.asarray(s.alphas_cumprod)) < 0)


def _data(n, seed=0):
  rng = np.random.default_rng(seed)
  x0 = jnp.asarray(rng.standard_normal((n, G, C)), jnp.float32)  # non-zero on padding too
  label = jnp.asarray(rng.integers(0, K, n), jnp.int32)
  return x0, label


def test_perfect_predictor_has_zero_loss_and_padding_stays_zero():
  s = diffusion.make_schedule('cosine', 100)
  x0, label = _data(64)
  t = jnp.arange(64) % 100
  seen = {}

  def oracle(params, x_t, t_frac, label, train, rngs):
    seen['x_t'] = x_t
    tt = jnp.round(t_frac * 100).astype(jnp.int32)
    a = s.sqrt_alphas_cumprod[tt][:, None, None]
    b = s.sqrt_one_minus_alphas_cumprod[tt][:, None, None]
    return (x_t - a * x0 * mask()) / b

  loss = diffusion.eps_loss(
    oracle, None, s, x0, label, mask(), jax.random.key(0), num_classes=K, t_B=t
  )
  assert float(loss) == pytest.approx(0.0, abs=1e-8)
  assert np.all(np.asarray(seen['x_t'])[:, mask() == 0] == 0.0)


def test_v_target_and_its_eps():
  s = diffusion.make_schedule('cosine', 100)
  x0, label = _data(64)
  t = jnp.arange(64) % 100
  a = s.sqrt_alphas_cumprod[t][:, None, None]
  b = s.sqrt_one_minus_alphas_cumprod[t][:, None, None]

  def v_oracle(params, x_t, t_frac, label, train, rngs):
    eps = (x_t - a * x0 * mask()) / b
    return a * eps - b * x0 * mask()

  loss = diffusion.eps_loss(
    v_oracle, None, s, x0, label, mask(), jax.random.key(0), num_classes=K, t_B=t, prediction='v'
  )
  assert float(loss) == pytest.approx(0.0, abs=1e-8)
  # The eps oracle is wrong under the v target, and eps_from_output inverts v.
  eps_loss = diffusion.eps_loss(
    v_oracle, None, s, x0, label, mask(), jax.random.key(0), num_classes=K, t_B=t
  )
  assert float(eps_loss) > 0.1
  noise = jax.random.normal(jax.random.key(5), x0.shape) * mask()
  x_t = diffusion.q_sample(s, x0 * mask(), t, noise)
  v = a * noise - b * x0 * mask()
  np.testing.assert_allclose(diffusion.eps_from_output('v', s, v, x_t, t), noise, atol=1e-5)


def test_loss_averages_over_real_entries_only():
  """Predicting 0 costs E[noise^2] = 1 per real entry; padding must not dilute it to 0.5."""
  s = diffusion.make_schedule('cosine', 100)
  x0, label = _data(256)
  zero = lambda params, x_t, t, y, train, rngs: jnp.zeros_like(x_t)
  loss = diffusion.eps_loss(zero, None, s, x0, label, mask(), jax.random.key(1), num_classes=K)
  assert float(loss) == pytest.approx(1.0, abs=0.03)
  # Garbage on the padding of the prediction does not change the loss.
  junk = lambda params, x_t, t, y, train, rngs: 100.0 * (1 - mask()) * jnp.ones_like(x_t)
  loss_junk = diffusion.eps_loss(junk, None, s, x0, label, mask(), jax.random.key(1), num_classes=K)
  assert float(loss_junk) == pytest.approx(float(loss), rel=1e-6)


def test_label_dropout_uses_the_null_label_at_the_given_rate():
  label = jnp.zeros(20_000, jnp.int32)
  dropped = diffusion.apply_label_dropout(jax.random.key(0), label, K, 0.2)
  assert set(np.unique(dropped).tolist()) == {0, K}
  assert float((dropped == K).mean()) == pytest.approx(0.2, abs=0.01)
  same = diffusion.apply_label_dropout(jax.random.key(0), label, K, 0.0)
  np.testing.assert_array_equal(same, label)


def test_label_dropout_reaches_the_network():
  s = diffusion.make_schedule('linear', 10)
  x0, label = _data(4000)
  seen = {}

  def spy(params, x_t, t, y, train, rngs):
    seen['label'] = y
    return jnp.zeros_like(x_t)

  diffusion.eps_loss(
    spy, None, s, x0, label, mask(), jax.random.key(2), num_classes=K, label_dropout=0.5
  )
  frac = float((seen['label'] == K).mean())
  assert frac == pytest.approx(0.5, abs=0.04)
