"""Val ε-MSE of exact Gaussian denoisers: a yardstick for the network's val loss.

  python bench/gaussian_eps_floor.py --workdir=W [--num_steps=500] [--stride=10]

For data x0 ~ N(0, S) the optimal ε-predictor is eps*(x_t) = sqrt(1-a) (a S + (1-a) I)^-1 x_t
(a = alpha_bar_t). This scores it on W's val split, with S fit on train (shrunk towards
its diagonal by 0, 30 and 60 %), and the independent-entry version (diagonal S), over
t on a grid (cosine schedule). A network whose val loss is above the full-covariance
number has learnt less joint structure than a Gaussian fit of train.
"""

import argparse

import numpy as np

from gdiff import diffusion
from gdiff import workdir as wd
from gdiff.data import dataset


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workdir', required=True, help='a workdir where prepare has run')
  parser.add_argument('--num_steps', type=int, default=500)
  parser.add_argument('--stride', type=int, default=10)
  args = parser.parse_args()
  layout = wd.Layout(args.workdir)
  emb_dir = layout.embedding
  mask = np.load(layout.mask).reshape(-1)
  train = dataset.load_split(emb_dir, 'train')['emb']
  val = dataset.load_split(emb_dir, 'val')['emb']
  train_NxD = train.reshape(len(train), -1)[:, mask].astype(np.float64)
  val_NxD = val.reshape(len(val), -1)[:, mask].astype(np.float64)
  dim = train_NxD.shape[1]
  abar = np.asarray(diffusion.make_schedule('cosine', args.num_steps).alphas_cumprod, np.float64)
  print('| train covariance | independent entries | full covariance (shrunk) |')
  print('|---|---|---|')
  for shrink in (0.0, 0.3, 0.6):
    cov = np.cov(train_NxD.T)
    cov = (1 - shrink) * cov + shrink * np.diag(np.diag(cov))
    independent, full = [], []
    for t in range(0, args.num_steps, args.stride):
      a, s = abar[t], 1 - abar[t]
      rng = np.random.default_rng(t)
      eps = rng.standard_normal(val_NxD.shape)
      x_t = np.sqrt(a) * val_NxD + np.sqrt(s) * eps
      var = np.diag(cov)
      independent.append(np.mean((np.sqrt(s) * x_t / (a * var + s) - eps) ** 2))
      pred = np.sqrt(s) * np.linalg.solve(a * cov + s * np.eye(dim), x_t.T).T
      full.append(np.mean((pred - eps) ** 2))
    print(f'| shrink {shrink:.1f} | {np.mean(independent):.3f} | {np.mean(full):.3f} |')


if __name__ == '__main__':
  main()
