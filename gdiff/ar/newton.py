"""Newton's method for a block of the local autoregressive model's per-SNP regressions.

Each SNP's fit (`gdiff.ar.model`) is one L2-penalised multinomial logistic regression
with a few dozen to a few hundred coefficients: its Hessian is small and cheap to form,
and ten or so Newton steps reach float32 precision where L-BFGS needed hundreds of
memory-bound passes over the indicators.

The model's parametrisation is redundant (a class's logit is c + e_k + (T + D_k) . f), and
eliminating the shared part from the class parts in float32 cancels catastrophically
when indicator columns repeat (SNPs in perfect LD). So the solver works with each class's
total coefficients theta_k = [c + e_k, T + D_k] on the class design v = [1, indicators]
(V columns; [1] without per-class tables) and the coefficients sigma shared by all
classes on s = [ancestry] ([indicators, ancestry] without per-class tables). Minimising
the model's penalty over the split for given theta gives, per coordinate, a quadratic form
theta^T Q theta across classes:

  intercepts:  Q = l2_shared (I - 1 1^T / K)                    (c free, e at l2_shared)
  indicators:  Q = l2_class I - l2_class^2 1 1^T / (l2_shared + K l2_class)

and the split back is exact: c = mean_k theta_k0, T = l2_class sum_k theta_k / (l2_shared +
K l2_class), e_k and D_k the rest. The data part of the Hessian is block-diagonal over
classes (plus the shared columns), so it is formed from one weighted Gram matrix per class
and pair of states, M_k = sum_{n in k} x_n x_n^T W_n, W_n = diag(p_n) - p_n p_n^T, and
solved by Cholesky. Each SNP takes its own step length (Armijo backtracking from 1); a
block stops when every SNP's Newton decrement per sequence is below `tol` (its objective
then lies within about tol / 2 per sequence of the minimum) or after `max_iter` steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_ARMIJO = 1e-4  # sufficient decrease, as a fraction of the step's predicted decrease
_HALVINGS = 20  # step lengths tried per iteration: 1, 1/2, ..., 2^-19
_JITTER = 1e-6  # on the Hessian's diagonal: an all-padding SNP has only its penalty
_DAMPING = 1e-5  # ... plus this times its largest diagonal entry (see `_direction`)


def pack(params: dict) -> tuple[jax.Array, jax.Array]:
  """(theta (B, K, V, C), sigma (B, Sd, C)) from a block's parameter dict (leading axis B)."""
  own = params['c'][:, None] + params['e']  # (B, K, C)
  theta = [own[:, :, None]]
  shared = []
  if 'D' in params:
    theta.append(params['T'][:, None] + params['D'])
  else:
    shared.append(params['T'])
  if 'A' in params:
    shared.append(params['A'])
  b, _, c = own.shape
  sigma = jnp.concatenate(shared, 1) if shared else jnp.zeros((b, 0, c))
  return jnp.concatenate(theta, 2), sigma


def unpack(theta, sigma, like: dict, l2_shared: float, l2_class: float) -> dict:
  """The model's parameter dict (the keys of `like`) from (theta, sigma): the split of each
  class total into shared and class parts that minimises the penalty."""
  k = theta.shape[1]
  intercept = theta[:, :, 0]
  c = intercept.mean(1)
  out = {'c': c, 'e': intercept - c[:, None]}
  if 'D' in like:
    total = theta[:, :, 1:]
    out['T'] = l2_class * total.sum(1) / (l2_shared + k * l2_class)
    out['D'] = total - out['T'][:, None]
    rest = sigma
  else:
    features = like['T'].shape[1]
    out['T'], rest = sigma[:, :features], sigma[:, features:]
  if 'A' in like:
    out['A'] = rest
  return out


def penalty_matrices(k: int, v: int, l2_shared: float, l2_class: float) -> jax.Array:
  """(V, K, K): the penalty's quadratic form across classes for each class-design column."""
  ones = jnp.ones((k, k))
  intercept = l2_shared * (jnp.eye(k) - ones / k)
  feature = l2_class * jnp.eye(k) - l2_class**2 * ones / (l2_shared + k * l2_class)
  return jnp.concatenate([intercept[None], jnp.broadcast_to(feature, (v - 1, k, k))], 0)


def _logits(theta, sigma, v, s, class_rows):
  """(B, N, S) logits of every state, the reference's 0."""
  shared = jnp.einsum('bns,bsc->bnc', s, sigma)
  parts = [
    jnp.einsum('bnv,bvc->bnc', v[:, lo:hi], theta[:, k]) for k, (lo, hi) in enumerate(class_rows)
  ]
  eta = jnp.concatenate(parts, 1) + shared
  return jnp.concatenate([jnp.zeros(eta.shape[:-1] + (1,)), eta], -1)


def _penalty(theta, sigma, q, l2_shared):
  """(B,) the penalty of each SNP."""
  return jnp.einsum('bkvc,vkl,blvc->b', theta, q, theta) + l2_shared * jnp.sum(sigma**2, (1, 2))


def _objective(theta, sigma, v, s, onehot, weight, class_rows, q, l2_shared):
  """(B,) per-SNP objective: penalty minus the (weighted) log-likelihood, summed over N."""
  full = _logits(theta, sigma, v, s, class_rows)
  ll = jnp.sum(jax.nn.log_softmax(full) * onehot, axis=(1, 2))
  return _penalty(theta, sigma, q, l2_shared) - weight * ll


def _direction(theta, sigma, v, s, onehot, weight, class_rows, q, l2_shared):
  """The Newton step (-H^-1 g, as theta and sigma) and the decrement g . H^-1 g, per SNP."""
  b, k, nv, c = theta.shape
  ns = sigma.shape[1]
  p = jax.nn.softmax(_logits(theta, sigma, v, s, class_rows))[..., 1:]  # (B, N, C)
  w = weight[:, None, None]
  resid = (p - onehot[..., 1:]) * w
  hess_w = (jnp.eye(c) * p[..., None] - p[..., :, None] * p[..., None, :]) * w[..., None]
  x = jnp.concatenate([v, s], -1)  # (B, N, V + Sd)
  grads, grams = [], []
  for lo, hi in class_rows:
    grads.append(jnp.einsum('bnx,bnc->bxc', x[:, lo:hi], resid[:, lo:hi]))
    grams.append(jnp.einsum('bnx,bnst,bny->bxsyt', x[:, lo:hi], hess_w[:, lo:hi], x[:, lo:hi]))
  grad = jnp.stack(grads, 1)  # (B, K, V + Sd, C)
  gram = jnp.stack(grams, 1)  # (B, K, V + Sd, C, V + Sd, C)
  # Gradient and Hessian over [theta_1 .. theta_K, sigma], each (column, state) flattened.
  g_theta = grad[:, :, :nv] + 2 * jnp.einsum('vkl,blvc->bkvc', q, theta)
  g_sigma = grad[:, :, nv:].sum(1) + 2 * l2_shared * sigma
  vc, sc = nv * c, ns * c
  dim = k * vc + sc
  h_tt = jnp.einsum('bkxsyt,kl->bkxslyt', gram[:, :, :nv, :, :nv], jnp.eye(k))
  h_tt = h_tt + 2 * jnp.einsum('vkl,st,vw->kvslwt', q, jnp.eye(c), jnp.eye(nv))[None]
  h_ts = gram[:, :, :nv, :, nv:]  # (B, K, V, C, Sd, C)
  h_ss = gram[:, :, nv:, :, nv:].sum(1)
  h_ss = h_ss + 2 * l2_shared * jnp.einsum('xy,st->xsyt', jnp.eye(ns), jnp.eye(c))
  h_ts = h_ts.reshape(b, k * vc, sc)
  top = jnp.concatenate([h_tt.reshape(b, k * vc, k * vc), h_ts], 2)
  bottom = jnp.concatenate([jnp.swapaxes(h_ts, 1, 2), h_ss.reshape(b, sc, sc)], 2)
  hess = jnp.concatenate([top, bottom], 1)
  g = jnp.concatenate([g_theta.reshape(b, k * vc), g_sigma.reshape(b, sc)], 1)
  # Levenberg damping at float32's resolution of the largest curvature: indicator columns
  # that repeat (SNPs in perfect LD) leave directions whose only curvature is the penalty,
  # below what a float32 Cholesky resolves; there the step shortens, elsewhere it is Newton's.
  scale = jnp.max(jnp.diagonal(hess, axis1=1, axis2=2), 1)
  damping = _DAMPING * scale + _JITTER
  hess = hess + damping[:, None, None] * jnp.eye(dim)
  step = cholesky_solve(hess, g)
  # A Cholesky that still fails: a gradient step at the largest curvature.
  step = jnp.where(jnp.isfinite(step).all(1, keepdims=True), step, g / (scale + damping)[:, None])
  decrement = jnp.sum(g * step, 1)
  d_theta = -step[:, : k * vc].reshape(theta.shape)
  d_sigma = -step[:, k * vc :].reshape(sigma.shape)
  return d_theta, d_sigma, decrement


def cholesky_solve(a: jax.Array, b: jax.Array) -> jax.Array:
  """x with a x = b for a batch of symmetric positive definite a (..., n, n), b (..., n).

  Plain jnp in loops over n, not LAPACK's custom calls: those hang now and then when
  several CPU devices run them inside while loops at once (the test suite's two fake
  devices). NaN where a is not positive definite in float32."""
  n = a.shape[-1]
  cols = jnp.arange(n)

  def factor(j, low):  # column j of the lower factor, from columns < j
    row = low[..., j, :]  # l[j, k], k < j (zeros beyond)
    diag = jnp.sqrt(a[..., j, j] - jnp.sum(row * row, -1))
    col = (a[..., :, j] - jnp.einsum('...ik,...k->...i', low, row)) / diag[..., None]
    col = jnp.where(cols > j, col, jnp.where(cols == j, diag[..., None], 0.0))
    return low.at[..., :, j].set(col)

  low = jax.lax.fori_loop(0, n, factor, jnp.zeros_like(a))

  def forward(j, y):  # L y = b
    value = (b[..., j] - jnp.sum(low[..., j, :] * y, -1)) / low[..., j, j]
    return y.at[..., j].set(value)

  def backward(i, x):  # L^T x = y, from the last row up
    j = n - 1 - i
    value = (y[..., j] - jnp.sum(low[..., :, j] * x, -1)) / low[..., j, j]
    return x.at[..., j].set(value)

  y = jax.lax.fori_loop(0, n, forward, jnp.zeros_like(b))
  return jax.lax.fori_loop(0, n, backward, jnp.zeros_like(b))


def minimise(
  theta, sigma, v, s, x_NxB, weight, class_rows, num_states, l2_shared, l2_class, max_iter, tol
):
  """Newton's method from (theta, sigma) for one block; returns (theta, sigma, steps taken).

  Args:
    theta, sigma: packed starting parameters (`pack`).
    v: (B, N, V) the class design per SNP, [1, indicators] or [1]; rows sorted by class.
    s: (B, N, Sd) the shared design, [ancestry] or [indicators, ancestry].
    x_NxB: the block's target states (int).
    weight: (B,) SNP weights (0: padding).
    class_rows: (start, stop) rows of each class.
    num_states: states per SNP (2 or 3).
    l2_shared, l2_class: the model's penalties, against the summed log-likelihood.
    max_iter: Newton steps at most.
    tol: stop when every SNP's decrement per sequence is below this.
  """
  n = v.shape[1]
  onehot = jax.nn.one_hot(x_NxB.T, num_states)  # (B, N, S)
  q = penalty_matrices(theta.shape[1], theta.shape[2], l2_shared, l2_class)
  args = (v, s, onehot, weight, class_rows, q, l2_shared)
  objective = lambda th, sg: _objective(th, sg, *args)

  def step(carry):
    theta, sigma, value, count, _ = carry
    d_theta, d_sigma, decrement = _direction(theta, sigma, *args)

    def moved(alpha):
      return theta + alpha[:, None, None, None] * d_theta, sigma + alpha[:, None, None] * d_sigma

    def search(ls):  # halve each SNP's step until it decreases the objective enough
      alpha, done, new_value, tries = ls
      trial = objective(*moved(alpha))
      ok = ~done & (trial <= value - _ARMIJO * alpha * decrement)
      alpha = jnp.where(done | ok, alpha, 0.5 * alpha)
      return alpha, done | ok, jnp.where(ok, trial, new_value), tries + 1

    alpha, done, new_value, _ = jax.lax.while_loop(
      lambda ls: (~jnp.all(ls[1])) & (ls[3] < _HALVINGS),
      search,
      (jnp.ones_like(value), jnp.zeros(value.shape, bool), value, 0),
    )
    alpha = jnp.where(done, alpha, 0.0)  # no decrease found: float32 is at its limit
    theta, sigma = moved(alpha)
    converged = jnp.all(decrement / n < tol) | ~jnp.any(done)
    return theta, sigma, new_value, count + 1, converged

  def going(carry):
    *_, count, converged = carry
    return (count < max_iter) & ~converged

  init = (theta, sigma, objective(theta, sigma), 0, jnp.array(False))
  theta, sigma, _, count, _ = jax.lax.while_loop(going, step, init)
  return theta, sigma, count
