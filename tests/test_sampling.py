"""Samplers against the analytic denoiser of Gaussian data.

For x0 ~ N(mu, sigma^2) per entry, x_t = sqrt(abar) x0 + sqrt(1 - abar) eps is Gaussian
and the optimal predictor is E[eps | x_t] = sqrt(1 - abar) (x_t - sqrt(abar) mu) /
(abar sigma^2 + 1 - abar). Samplers driven by it must return N(mu, sigma^2).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gdiff import diffusion, sampling

# Coarser schedules (T = 40) under-disperse by ~8% through discretisation alone.
T = 200
SCHEDULE = diffusion.make_schedule('cosine', T)
G, C = 4, 2
MASK = np.ones((G, C), np.float32)
MASK[3, 1] = MASK[2, 1] = 0.0  # padding entries
SIGMA = 0.5
# Per-class means (classes 0, 1) and the null label 2's mean.
MU_KxGxC = (
  np.stack(
    [
      np.linspace(-2, 2, G * C).reshape(G, C),
      np.linspace(3, -1, G * C).reshape(G, C),
      np.full((G, C), 0.5),
    ]
  ).astype(np.float32)
  * MASK
)


def gaussian_eps(mu_KxGxC, sigma, x, t_over_T, label, schedule=SCHEDULE):
  t = jnp.round(t_over_T * schedule.num_steps).astype(jnp.int32)
  abar = schedule.alphas_cumprod[t][:, None, None]
  mu = jnp.asarray(mu_KxGxC)[label]
  return jnp.sqrt(1 - abar) * (x - jnp.sqrt(abar) * mu) / (abar * sigma**2 + 1 - abar)


EPS = functools.partial(gaussian_eps, MU_KxGxC, SIGMA)


def _check_gaussian(x_BxGxC, label_B, mean_tol=0.05, std_tol=0.05):
  real = MASK.astype(bool)
  for k in (0, 1):
    x = np.asarray(x_BxGxC)[np.asarray(label_B) == k]
    np.testing.assert_allclose(x.mean(0)[real], MU_KxGxC[k][real], atol=mean_tol)
    np.testing.assert_allclose(x.std(0)[real], SIGMA, atol=std_tol)
  assert np.all(np.asarray(x_BxGxC)[:, ~real] == 0.0)


LABELS = np.arange(4000) % 2


def test_ddpm_recovers_gaussian():
  x = sampling.ddpm_sample(EPS, SCHEDULE, jax.random.key(0), LABELS, MASK)
  _check_gaussian(x, LABELS, std_tol=0.03)


@pytest.mark.parametrize('eta', [0.0, 1.0])
def test_ddim_recovers_gaussian(eta):
  x = sampling.ddim_sample(EPS, SCHEDULE, jax.random.key(1), LABELS, MASK, steps=50, eta=eta)
  _check_gaussian(x, LABELS)


def test_wrong_denoiser_is_detected():
  # The check above must fail when the sampler is driven by the wrong data model.
  wrong = functools.partial(gaussian_eps, MU_KxGxC, 1.0)
  x = sampling.ddim_sample(wrong, SCHEDULE, jax.random.key(1), LABELS, MASK, steps=50)
  with pytest.raises(AssertionError):
    _check_gaussian(x, LABELS)


def test_ddim_all_steps_eta1_is_ddpm():
  # DDIM with S = T and eta = 1 is the ancestral sampler, path by path (same noise).
  labels = LABELS[:64]
  a = sampling.ddpm_sample(EPS, SCHEDULE, jax.random.key(2), labels, MASK)
  b = sampling.ddim_sample(EPS, SCHEDULE, jax.random.key(2), labels, MASK, steps=T, eta=1.0)
  np.testing.assert_allclose(a, b, atol=2e-4)


def test_ddim_timesteps():
  np.testing.assert_array_equal(sampling.ddim_timesteps(10, 4), [9, 6, 3, 0])
  for s in (1, 7, 39, 40):
    ts = sampling.ddim_timesteps(40, s)
    assert len(np.unique(ts)) == s and ts[0] == 39 and np.all(np.diff(ts) < 0)


@pytest.mark.parametrize('steps,guidance', [(7, 0.0), (5, 1.5)])
def test_network_call_count(steps, guidance):
  calls = []

  def counting_eps(x, t, y):
    jax.debug.callback(lambda b: calls.append(b.shape[0]), y)
    return EPS(x, t, y)

  sampling.ddim_sample(
    counting_eps,
    SCHEDULE,
    jax.random.key(3),
    LABELS[:6],
    MASK,
    steps=steps,
    guidance=guidance,
    null_label=2,
  )
  # One call per step, on B rows without guidance and on 2B rows (cond + null) with it.
  assert calls == [6 if guidance == 0 else 12] * steps
  calls.clear()
  sampling.ddpm_sample(counting_eps, SCHEDULE, jax.random.key(3), LABELS[:6], MASK)
  assert calls == [6] * T
  calls.clear()
  sampling.dpmpp2m_sample(
    counting_eps,
    SCHEDULE,
    jax.random.key(3),
    LABELS[:6],
    MASK,
    steps=steps,
    guidance=guidance,
    null_label=2,
  )
  assert calls == [6 if guidance == 0 else 12] * steps


@pytest.mark.parametrize('w', [0.0, 0.7])
def test_guidance_is_linear_in_predictions(w):
  # eps* is affine in mu, so guided eps equals eps* of mu' = (1 + w) mu_y - w mu_null.
  labels = LABELS[:32]
  guided = sampling.ddim_sample(
    EPS, SCHEDULE, jax.random.key(4), labels, MASK, steps=10, guidance=w, null_label=2
  )
  mu = MU_KxGxC.copy()
  mu[:2] = (1 + w) * MU_KxGxC[:2] - w * MU_KxGxC[2]
  plain = sampling.ddim_sample(
    functools.partial(gaussian_eps, mu, SIGMA), SCHEDULE, jax.random.key(4), labels, MASK, steps=10
  )
  np.testing.assert_allclose(guided, plain, atol=1e-3)
  if w:
    unguided = sampling.ddim_sample(EPS, SCHEDULE, jax.random.key(4), labels, MASK, steps=10)
    assert np.abs(np.asarray(unguided) - np.asarray(guided)).max() > 0.1


def test_padding_stays_zero_even_if_network_disagrees():
  ones = lambda x, t, y: jnp.ones_like(x)
  real = MASK.astype(bool)
  for clip, x in (
    (None, sampling.ddpm_sample(ones, SCHEDULE, jax.random.key(5), LABELS[:8], MASK)),
    (
      5.0,
      sampling.ddim_sample(
        ones, SCHEDULE, jax.random.key(5), LABELS[:8], MASK, eta=1.0, steps=5, clip_x0=5.0
      ),
    ),
  ):
    x = np.asarray(x)
    assert np.all(x[:, ~real] == 0.0)
    assert np.all(x[:, real] != 0.0)
    # The last step returns the clipped x0 prediction; without a clip it explodes.
    assert (np.abs(x).max() <= clip + 1e-5) if clip else (np.abs(x).max() > 100)


def test_noise_is_per_sample_not_per_batch():
  key = jax.random.key(6)
  labels = LABELS[:6]
  whole = sampling.ddim_sample(EPS, SCHEDULE, key, labels, MASK, steps=5, eta=1.0)
  again = sampling.ddim_sample(EPS, SCHEDULE, key, labels, MASK, steps=5, eta=1.0)
  np.testing.assert_array_equal(whole, again)
  # Samples 4, 5 in a padded batch of 4 (ids 4, 5, 6, 7) equal those of the whole batch.
  part = sampling.ddim_sample(
    EPS, SCHEDULE, key, LABELS[4:8], MASK, np.arange(4, 8), steps=5, eta=1.0
  )
  np.testing.assert_allclose(part[:2], whole[4:], atol=1e-6)
  other = sampling.ddim_sample(EPS, SCHEDULE, jax.random.key(7), labels, MASK, steps=5, eta=1.0)
  assert np.abs(np.asarray(other) - np.asarray(whole))[:, MASK.astype(bool)].min() > 0


def test_make_sampler_params_argument_and_sharding():
  apply_fn = lambda mu, x, t, y: gaussian_eps(mu, SIGMA, x, t, y)
  sample = sampling.make_sampler(
    'ddim', apply_fn, SCHEDULE, MASK, steps=8, eta=0.5, guidance=0.3, null_label=2
  )
  mesh = jax.make_mesh((jax.device_count(),), ('data',), axis_types=(jax.sharding.AxisType.Auto,))
  batch = NamedSharding(mesh, P('data'))
  labels = jax.device_put(LABELS[:8], batch)
  ids = jax.device_put(np.arange(8, dtype=np.int32), batch)
  out = sample(jnp.asarray(MU_KxGxC), jax.random.key(8), labels, ids)
  ref = sampling.ddim_sample(
    EPS, SCHEDULE, jax.random.key(8), LABELS[:8], MASK, steps=8, eta=0.5, guidance=0.3, null_label=2
  )
  np.testing.assert_allclose(out, ref, atol=1e-5)
  assert out.sharding.is_equivalent_to(batch, 3)
  # New params, key and ids of the same shapes reuse the compiled sampler.
  sample(jnp.asarray(MU_KxGxC) + 1, jax.random.key(9), labels, ids + 8)
  assert sample._cache_size() == 1
  with pytest.raises(ValueError, match='unknown sampler'):
    sampling.make_sampler('euler', apply_fn, SCHEDULE, MASK)


def test_v_prediction_network_samples_the_same_cohort():
  # A network that outputs v = sqrt(abar) eps - sqrt(1 - abar) x0 of the analytic denoiser,
  # sampled with prediction='v', gives the eps network's samples.
  def v_apply(mu, x, t_over_T, y):
    t = jnp.round(t_over_T * T).astype(jnp.int32)
    a = SCHEDULE.sqrt_alphas_cumprod[t][:, None, None]
    b = SCHEDULE.sqrt_one_minus_alphas_cumprod[t][:, None, None]
    eps = gaussian_eps(mu, SIGMA, x, t_over_T, y)
    x0 = (x - b * eps) / a
    return a * eps - b * x0

  sample = sampling.make_sampler('ddim', v_apply, SCHEDULE, MASK, steps=20, prediction='v')
  out = sample(jnp.asarray(MU_KxGxC), jax.random.key(3), LABELS[:64], np.arange(64))
  ref = sampling.ddim_sample(EPS, SCHEDULE, jax.random.key(3), LABELS[:64], MASK, steps=20)
  np.testing.assert_allclose(out, ref, atol=1e-3)
  with pytest.raises(ValueError, match='unknown prediction'):
    sampling.make_sampler('ddim', v_apply, SCHEDULE, MASK, prediction='x1')


@pytest.mark.parametrize('steps', [1, 2, 3, 20])
def test_dpmpp2m_recovers_gaussian(steps):
  if steps < 20:  # degenerate step counts run and keep padding at 0
    x = sampling.dpmpp2m_sample(EPS, SCHEDULE, jax.random.key(1), LABELS[:8], MASK, steps=steps)
    assert np.all(np.isfinite(x)) and np.all(np.asarray(x)[:, ~MASK.astype(bool)] == 0.0)
    return
  x = sampling.dpmpp2m_sample(EPS, SCHEDULE, jax.random.key(1), LABELS, MASK, steps=20)
  _check_gaussian(x, LABELS)


def test_dpmpp2m_solves_the_ode_with_few_steps():
  # Known answer: for Gaussian data the probability-flow ODE maps x_T to
  # mu + s (x_T - alpha_T mu) / sqrt(alpha_T^2 s^2 + sigma_T^2); deterministic DDIM with all
  # T = 500 steps is within 0.01 of it. DPM-Solver++(2M) from the same x_T must land near
  # that solution with 10-20 steps, closer than DDIM with as many steps. Measured
  # (max abs error vs DDIM-500; docs/benchmarks.md): DDIM-10/20/50 0.18/0.089/0.033,
  # DPM++-10/20/50 0.067/0.0013/0.0065 (at 50, DDIM-500's own error 0.004 dominates).
  schedule = diffusion.make_schedule('cosine', 500)
  eps = functools.partial(gaussian_eps, MU_KxGxC, SIGMA, schedule=schedule)
  labels, key = LABELS[:64], jax.random.key(11)
  ode = np.asarray(sampling.ddim_sample(eps, schedule, key, labels, MASK, steps=500))
  x_T = np.asarray(sampling._noise(sampling._sample_keys(key, jnp.arange(64)), 500, MASK.shape))
  abar_T = float(schedule.alphas_cumprod[-1])
  mu = MU_KxGxC[labels]
  scale = SIGMA / np.sqrt(abar_T * SIGMA**2 + 1 - abar_T)
  exact = (mu + scale * (x_T - np.sqrt(abar_T) * mu)) * MASK
  assert np.abs(ode - exact).max() < 0.01

  def err(sample_fn, steps):
    return np.abs(np.asarray(sample_fn(eps, schedule, key, labels, MASK, steps=steps)) - ode).max()

  for steps, dpm_tol in ((10, 0.15), (20, 0.01)):
    ddim_err, dpm_err = err(sampling.ddim_sample, steps), err(sampling.dpmpp2m_sample, steps)
    assert dpm_err < dpm_tol and dpm_err < ddim_err / 2, (steps, dpm_err, ddim_err)


def test_dpmpp2m_noise_is_per_sample_and_make_sampler_builds_it():
  key = jax.random.key(6)
  whole = sampling.dpmpp2m_sample(EPS, SCHEDULE, key, LABELS[:6], MASK, steps=5)
  # Samples 4, 5 in a batch of 4 (ids 4, 5, 6, 7) equal those of the batch of 6.
  part = sampling.dpmpp2m_sample(EPS, SCHEDULE, key, LABELS[4:8], MASK, np.arange(4, 8), steps=5)
  np.testing.assert_allclose(part[:2], whole[4:], atol=1e-6)
  other = sampling.dpmpp2m_sample(EPS, SCHEDULE, jax.random.key(7), LABELS[:6], MASK, steps=5)
  assert np.abs(np.asarray(other) - np.asarray(whole))[:, MASK.astype(bool)].min() > 0
  apply_fn = lambda mu, x, t, y: gaussian_eps(mu, SIGMA, x, t, y)
  sample = sampling.make_sampler('dpmpp2m', apply_fn, SCHEDULE, MASK, steps=5, clip_x0=10.0)
  out = sample(jnp.asarray(MU_KxGxC), key, LABELS[4:8], np.arange(4, 8))
  np.testing.assert_allclose(out, part, atol=1e-5)


def test_dpmpp2m_padding_and_clip_as_ddim():
  ones = lambda x, t, y: jnp.ones_like(x)
  key = jax.random.key(5)
  x = sampling.dpmpp2m_sample(ones, SCHEDULE, key, LABELS[:8], MASK, steps=5, clip_x0=5.0)
  x = np.asarray(x)
  real = MASK.astype(bool)
  assert np.all(x[:, ~real] == 0.0) and np.all(x[:, real] != 0.0)
  assert np.abs(x).max() <= 5.0 + 1e-5


def test_config_check_accepts_dpmpp2m_with_steps_in_range():
  from configs import base
  from gdiff import sample
  from gdiff.errors import InputError

  config = base.get_config()
  config.sample.method, config.sample.steps = 'dpmpp2m', 20
  settings = sample.sampler_settings(config)
  assert settings['method'] == 'dpmpp2m' and settings['steps'] == 20 and 'eta' not in settings
  config.sample.steps = config.diffusion.num_steps + 1
  with pytest.raises(InputError, match='sample.steps'):
    sample.sampler_settings(config)
