"""Reverse-diffusion samplers: DDPM ancestral, DDIM and DPM-Solver++(2M), with
classifier-free guidance.

Samplers are pure functions of a denoiser `eps_fn(x_BxGxC, t_over_T_B, label_B) -> eps_BxGxC`
(a closure over params and `model.apply`, or an analytic function in tests), a
`gdiff.diffusion.Schedule`, a key and the labels; the whole time loop runs inside
one `lax.fori_loop`. Time follows `gdiff.diffusion`: integer steps t in {0, ..., T-1},
the network sees t / T.

Randomness is per sample: sample i draws its noise from `fold_in(key, sample_ids[i])`,
then `fold_in(., t)` at step t, so a synthetic person does not depend on the batch
size, the batch it landed in or the number of devices, and the same key gives the
same cohort.

Classifier-free guidance with weight w: eps = (1 + w) eps(x, t, y) - w eps(x, t, null).
With w != 0 the conditional and null predictions come from one network call on a
batch of 2B; with w == 0 the network runs once on B (a static choice).

x0-clipping: the embedding is z-scored per entry, but PCA components of rare variants
are heavy-tailed (a carrier of a MAF-0.01 SNP sits near z = 7), so a tight clip such
as +-1 or +-3 would erase real carriers. `clip_x0` (default 10 in configs/base.py)
only guards the early, nearly pure-noise steps, where x0 = (x - sqrt(1 - abar) eps) /
sqrt(abar) divides by a tiny sqrt(abar); None disables it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gdiff import diffusion

EpsFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def guided_eps(
  eps_fn: EpsFn, x_BxGxC, t_over_T_B, label_B, guidance: float, null_label: int | None
):
  """Classifier-free guided noise prediction; one network call either way.

  Args:
    eps_fn: the denoiser.
    x_BxGxC: noisy inputs.
    t_over_T_B: time as t / T.
    label_B: class labels.
    guidance: w (static); 0 calls `eps_fn` once on the conditional batch.
    null_label: label of the unconditional prediction (needed when w != 0).

  Returns:
    eps (B, G, C).
  """
  if guidance == 0.0:
    return eps_fn(x_BxGxC, t_over_T_B, label_B)
  if null_label is None:
    raise ValueError('classifier-free guidance needs null_label (num_classes)')
  b = x_BxGxC.shape[0]
  eps_2BxGxC = eps_fn(
    jnp.concatenate([x_BxGxC, x_BxGxC]),
    jnp.concatenate([t_over_T_B, t_over_T_B]),
    jnp.concatenate([label_B, jnp.full_like(label_B, null_label)]),
  )
  return (1.0 + guidance) * eps_2BxGxC[:b] - guidance * eps_2BxGxC[b:]


def _sample_keys(key, sample_ids_B):
  return jax.vmap(jax.random.fold_in, (None, 0))(key, sample_ids_B)


def _noise(keys_B, t, shape_GxC):
  """Per-sample standard normal noise for integer step t."""
  return jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, t), shape_GxC))(keys_B)


def _predict_x0(x, eps, abar, clip_x0):
  x0 = (x - jnp.sqrt(1.0 - abar) * eps) / jnp.sqrt(abar)
  if clip_x0 is not None:
    x0 = jnp.clip(x0, -clip_x0, clip_x0)
  return x0


def _prepare(key, label_B, mask_GxC, sample_ids_B):
  label_B = jnp.asarray(label_B, jnp.int32)
  mask = jnp.asarray(mask_GxC, jnp.float32)
  if sample_ids_B is None:
    sample_ids_B = jnp.arange(label_B.shape[0], dtype=jnp.int32)
  keys_B = _sample_keys(key, jnp.asarray(sample_ids_B, jnp.int32))
  return label_B, mask, keys_B


def ddpm_loop(
  eps_fn: EpsFn,
  schedule: diffusion.Schedule,
  key,
  label_B,
  mask_GxC,
  sample_ids_B=None,
  *,
  guidance: float = 0.0,
  null_label: int | None = None,
  clip_x0: float | None = None,
):
  """DDPM ancestral sampling over all T steps with the posterior variance beta-tilde.

  Traceable, not jitted (see `ddpm_sample` and `make_sampler`).

  Args:
    eps_fn: the denoiser.
    schedule: the training schedule.
    key: PRNG key of the cohort.
    label_B: int32 labels in [0, num_classes).
    mask_GxC: 1 on real embedding entries, 0 on padding (x is kept 0 there).
    sample_ids_B: global sample indices that seed each sample's noise (default arange(B)).
    guidance: classifier-free guidance weight w.
    null_label: the null label (num_classes), needed when guidance != 0.
    clip_x0: clip the predicted x0 to [-clip_x0, clip_x0]; None: no clipping.

  Returns:
    x0 (B, G, C) float32, exactly 0 on padding.
  """
  label_B, mask, keys_B = _prepare(key, label_B, mask_GxC, sample_ids_B)
  betas, abar = schedule.betas, schedule.alphas_cumprod
  num_steps = schedule.num_steps
  abar_prev = jnp.concatenate([jnp.ones((1,), abar.dtype), abar[:-1]])
  post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
  coef_x0 = betas * jnp.sqrt(abar_prev) / (1.0 - abar)
  coef_xt = (1.0 - abar_prev) * jnp.sqrt(1.0 - betas) / (1.0 - abar)
  x = _noise(keys_B, num_steps, mask.shape) * mask  # x_T uses step index T, unused below

  def body(i, x):
    t = num_steps - 1 - i
    t_over_T = jnp.full(label_B.shape, t / num_steps, jnp.float32)
    eps = guided_eps(eps_fn, x, t_over_T, label_B, guidance, null_label)
    x0 = _predict_x0(x, eps, abar[t], clip_x0)
    mean = coef_x0[t] * x0 + coef_xt[t] * x
    x = mean + jnp.sqrt(post_var[t]) * _noise(keys_B, t, mask.shape)  # post_var[0] = 0
    return x * mask

  return jax.lax.fori_loop(0, num_steps, body, x)


def ddim_timesteps(num_steps: int, steps: int) -> np.ndarray:
  """`steps` evenly spaced integer steps from T-1 down to 0 (both included when S > 1).

  Spacing (T-1)/(S-1) >= 1 keeps the rounded steps distinct, so the network runs
  exactly S times.
  """
  if not 1 <= steps <= num_steps:
    raise ValueError(f'steps must be in [1, {num_steps}], got {steps}')
  return np.round(np.linspace(num_steps - 1, 0, steps)).astype(np.int32)


def _visited(schedule: diffusion.Schedule, steps: int):
  """(t_S, abar_S): the `steps` integer steps DDIM and DPM-Solver++ visit, and their abar."""
  t_seq = jnp.asarray(ddim_timesteps(schedule.num_steps, steps))
  return t_seq, schedule.alphas_cumprod[t_seq]


def ddim_loop(
  eps_fn: EpsFn,
  schedule: diffusion.Schedule,
  key,
  label_B,
  mask_GxC,
  sample_ids_B=None,
  *,
  steps: int = 50,
  eta: float = 0.0,
  guidance: float = 0.0,
  null_label: int | None = None,
  clip_x0: float | None = None,
):
  """DDIM (Song et al. 2021) over `steps` evenly spaced steps; eta = 1 is ancestral.

  Args: as `ddpm_loop`, plus
    steps: number of network evaluations S (static), 1 <= S <= T.
    eta: 0 deterministic; 1 uses the DDPM posterior variance between the visited steps.

  Returns:
    x0 (B, G, C) float32, exactly 0 on padding.
  """
  label_B, mask, keys_B = _prepare(key, label_B, mask_GxC, sample_ids_B)
  num_steps = schedule.num_steps
  t_seq, abar_seq = _visited(schedule, steps)
  abar_prev_seq = jnp.concatenate([abar_seq[1:], jnp.ones((1,), abar_seq.dtype)])
  x = _noise(keys_B, num_steps, mask.shape) * mask

  def body(i, x):
    t, abar, abar_prev = t_seq[i], abar_seq[i], abar_prev_seq[i]
    t_over_T = jnp.full(label_B.shape, 1.0 / num_steps, jnp.float32) * t
    eps = guided_eps(eps_fn, x, t_over_T, label_B, guidance, null_label)
    x0 = _predict_x0(x, eps, abar, clip_x0)
    eps = (x - jnp.sqrt(abar) * x0) / jnp.sqrt(1.0 - abar)  # consistent with a clipped x0
    sigma = eta * jnp.sqrt((1.0 - abar_prev) / (1.0 - abar) * (1.0 - abar / abar_prev))
    dir_xt = jnp.sqrt(jnp.maximum(1.0 - abar_prev - sigma**2, 0.0)) * eps
    x = jnp.sqrt(abar_prev) * x0 + dir_xt + sigma * _noise(keys_B, t, mask.shape)
    return x * mask

  return jax.lax.fori_loop(0, steps, body, x)


def dpmpp2m_loop(
  eps_fn: EpsFn,
  schedule: diffusion.Schedule,
  key,
  label_B,
  mask_GxC,
  sample_ids_B=None,
  *,
  steps: int = 20,
  guidance: float = 0.0,
  null_label: int | None = None,
  clip_x0: float | None = None,
):
  """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2): multistep, second order, data prediction.

  Solves the probability-flow ODE (the deterministic DDIM's ODE) in
  lambda_t = log(alpha_t / sigma_t), alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t),
  visiting the same `steps` integer steps as DDIM (`ddim_timesteps`: uniform in time, not
  in lambda). Step i, from t_i to t_{i+1} with h = lambda_{t_{i+1}} - lambda_{t_i}, r =
  h_{i-1} / h:
    D = x0_i + (x0_i - x0_{i-1}) / (2 r),
    x_{t_{i+1}} = (sigma_{t_{i+1}} / sigma_{t_i}) x_{t_i} - alpha_{t_{i+1}} (e^{-h} - 1) D.
  The first step is first order (D = x0_0, no history). "lower_order_final": the last two
  steps are first order, always: the step into t = 0 spans a large lambda interval
  (cosine, T = 500, 20 steps: h = 2.3 after 0.64), where extrapolating the x0 history
  overshoots (on Gaussian data it made 2M worse than DDIM at 10-20 steps), and the step
  from t = 0 to clean data (sigma = 0, h = inf) returns the x0 prediction, as DDIM's last
  step does. x0 = (x - sigma eps) / alpha is clipped like DDIM's; padding is
  kept 0 after every step. The only randomness is x_T, seeded per sample as in DDIM.

  Args: as `ddpm_loop`, plus
    steps: number of network evaluations S (static), 1 <= S <= T.

  Returns:
    x0 (B, G, C) float32, exactly 0 on padding.
  """
  label_B, mask, keys_B = _prepare(key, label_B, mask_GxC, sample_ids_B)
  num_steps = schedule.num_steps
  t_seq, abar_seq = _visited(schedule, steps)
  alpha_seq, sigma_seq = jnp.sqrt(abar_seq), jnp.sqrt(1.0 - abar_seq)
  lam_seq = jnp.log(alpha_seq) - jnp.log(sigma_seq)
  h_inner = lam_seq[1:] - lam_seq[:-1]  # (S - 1,) steps between visited t
  # Per step: x <- ratio x + coef D, D = x0 + w (x0 - x0_prev). Last step: x <- x0.
  ratio_seq = jnp.concatenate([sigma_seq[1:] / sigma_seq[:-1], jnp.zeros((1,))])
  coef_seq = jnp.concatenate([-alpha_seq[1:] * jnp.expm1(-h_inner), jnp.ones((1,))])
  w_mid = h_inner[1:-1] / (2.0 * h_inner[:-2])  # 1 / (2 r) for steps 1 .. S-3
  w_seq = jnp.concatenate([jnp.zeros((1,)), w_mid, jnp.zeros((2,))])[:steps]
  x = _noise(keys_B, num_steps, mask.shape) * mask

  def body(i, carry):
    x, x0_prev = carry
    t_over_T = jnp.full(label_B.shape, 1.0 / num_steps, jnp.float32) * t_seq[i]
    eps = guided_eps(eps_fn, x, t_over_T, label_B, guidance, null_label)
    x0 = _predict_x0(x, eps, abar_seq[i], clip_x0)
    d = x0 + w_seq[i] * (x0 - x0_prev)
    x = ratio_seq[i] * x + coef_seq[i] * d
    return x * mask, x0

  x, _ = jax.lax.fori_loop(0, steps, body, (x, jnp.zeros_like(x)))
  return x


SAMPLERS = {'ddpm': ddpm_loop, 'ddim': ddim_loop, 'dpmpp2m': dpmpp2m_loop}
# Config options (`sample.<name>`) each sampler takes besides the common ones.
SAMPLER_OPTIONS = {'ddpm': (), 'ddim': ('steps', 'eta'), 'dpmpp2m': ('steps',)}

_STATIC = ('eps_fn', 'guidance', 'null_label', 'clip_x0')
ddpm_sample = jax.jit(ddpm_loop, static_argnames=_STATIC)
ddpm_sample.__doc__ = 'Jitted `ddpm_loop` (eps_fn, guidance, null_label, clip_x0 static).'
ddim_sample = jax.jit(ddim_loop, static_argnames=_STATIC + ('steps',))
ddim_sample.__doc__ = 'Jitted `ddim_loop` (eps_fn, steps, guidance, null_label, clip_x0 static).'
dpmpp2m_sample = jax.jit(dpmpp2m_loop, static_argnames=_STATIC + ('steps',))
dpmpp2m_sample.__doc__ = 'Jitted `dpmpp2m_loop` (as `ddim_sample`).'


def make_sampler(
  method: str,
  apply_fn: Callable,
  schedule: diffusion.Schedule,
  mask_GxC,
  *,
  guidance: float = 0.0,
  null_label: int | None = None,
  clip_x0: float | None = None,
  prediction: str = 'eps',
  **options,
):
  """A jitted `sample(params, key, label_B, sample_ids_B) -> x0_BxGxC` for a network.

  Params are an argument (not a closure constant), so one compilation serves every
  batch of the same size; shardings follow the inputs (shard labels and ids on 'data').

  Args:
    method: a key of `SAMPLERS`.
    apply_fn: `apply_fn(params, x_BxGxC, t_over_T_B, label_B) -> output_BxGxC`, the
      network's prediction of kind `prediction` (a key of `diffusion.PREDICTIONS`).
    schedule: the training schedule.
    mask_GxC: mask of real entries.
    guidance, null_label, clip_x0: as `ddpm_loop`.
    **options: the method's `SAMPLER_OPTIONS` (e.g. steps, eta for DDIM).

  Returns:
    The jitted sampler.
  """
  if method not in SAMPLERS:
    raise ValueError(f'unknown sampler {method!r}; known: {sorted(SAMPLERS)}')
  loop = functools.partial(
    SAMPLERS[method], guidance=guidance, null_label=null_label, clip_x0=clip_x0, **options
  )
  mask = np.asarray(mask_GxC, np.float32)

  if prediction not in diffusion.PREDICTIONS:
    raise ValueError(f'unknown prediction {prediction!r}; known: {sorted(diffusion.PREDICTIONS)}')
  num_steps = schedule.num_steps

  def eps_fn_of(params):
    def eps_fn(x, t_over_T, y):
      t = jnp.round(t_over_T * num_steps).astype(jnp.int32)
      return diffusion.eps_from_output(prediction, schedule, apply_fn(params, x, t_over_T, y), x, t)

    return eps_fn

  @jax.jit
  def sample(params, key, label_B, sample_ids_B):
    return loop(eps_fn_of(params), schedule, key, label_B, mask, sample_ids_B)

  return sample
