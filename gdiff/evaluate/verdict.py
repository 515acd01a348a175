"""The report's words: a plain-language verdict, the guarantees, and warnings.

`verdict(metrics)` is the paragraph at the top of report.md / report.html: for a
geneticist, how realistic (LD, detection AUC against the real-vs-real reference), how
private (membership AUC against 0.5, identical copies), how useful (recovery, GWAS
concordance) gdiff's cohort is, and whether it dominates the mosaic curve.

`guarantees(metrics)` is the place for formal guarantees (DP ε, the release gate's
counts): one sentence per key `dp` / `gate` present in the metrics.

`warnings(metrics)` lists, per report section, one line for each metric that cannot
discriminate here: a baseline that cannot be good (independent SNPs) passes the same
target, or a standard error is larger than the margin to the target or to the reference.
"""

from __future__ import annotations

import math

from gdiff.evaluate import protocol, report

# Sections whose recovery the independent-SNPs baseline should fail, if recovery can
# tell LD-keeping cohorts from per-SNP frequencies: (section, its name in prose).
RECOVERY_SECTIONS = (
  ('utility', 'recovery (embedding classifiers)'),
  ('utility_genotype', 'recovery (scikit-learn on genotypes)'),
  ('utility_hard_pair', 'recovery on the hard pair'),
)
RECOVERY_TARGET = 0.95
INDEPENDENT = 'independent'  # the baseline that keeps per-class frequencies and no LD
# Metrics with a standard error (`<path>_se`) and what they are read against.
SE_TARGETS = (
  ('privacy.genotype.mia_auc', 'membership AUC (genotypes)', 0.55),
  ('privacy.embedding.mia_auc', 'membership AUC (embedding)', 0.55),
  ('realism.detection_auc', 'detection AUC', 0.60),
)


def _num(value) -> float | None:
  ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
  return float(value) if ok else None


def _get(results: dict, path: str) -> float | None:
  return _num(report.lookup(results, path))


def recovery_sd(results: dict, section: str) -> float | None:
  """The seed sd of the classifier with the lowest recovery (the one `recovery_min` is)."""
  rows = [
    v['recovery']
    for v in (results.get(section) or {}).values()
    if isinstance(v, dict) and isinstance(v.get('recovery'), dict)
  ]
  if not rows:
    return None
  return _num(min(rows, key=lambda r: r['mean']).get('sd'))


# ------------------------------------------------------------------ the verdict
def _realism(g: dict, ref: dict) -> str | None:
  keys = ('ld_r2_corr', 'detection_auc', 'detection_auc_se')
  ld, det, se = (_get(g, f'realism.{k}') for k in keys)
  ref_det = _get(ref, 'realism.detection_auc')
  if ld is None and det is None:
    return None
  parts = []
  if ld is not None:
    word = 'keeps' if ld >= 0.97 else 'only partly keeps'
    parts.append(f'it {word} the LD of nearby SNPs (LD r² correlation {ld:.3f}, target ≥ 0.97)')
  if det is not None:
    text = f'a classifier tells its people from real held-out people with AUC {det:.3f}'
    text += f' ± {se:.3f}' if se is not None else ''
    if ref_det is not None:
      text += f', where two real samples give {ref_det:.3f}'
    noise = 2 * (se or 0.0)
    if ref_det is not None and abs(det - 0.5) <= abs(ref_det - 0.5) + noise:
      text += ' (as hard to tell from real people as another real sample)'
    elif det <= 0.6:
      text += ' (slightly detectable; target ≤ 0.60)'
    else:
      text += ' (easily told apart from real people; target ≤ 0.60)'
    parts.append(text)
  return 'Realism: ' + '; '.join(parts) + '.'


def _privacy(g: dict) -> str | None:
  space = 'genotype' if report.lookup(g, 'privacy.genotype.mia_auc') is not None else 'embedding'
  mia, se = _get(g, f'privacy.{space}.mia_auc'), _get(g, f'privacy.{space}.mia_auc_se')
  if mia is None:
    return None
  text = (
    f'Privacy: an attacker who scores people by their distance to the nearest synthetic person '
    f'tells training members from held-out people with AUC {mia:.3f}'
  )
  text += f' ± {se:.3f}' if se is not None else ''
  text += ' (0.5 = no better than chance, what a fresh real sample gives; target ≤ 0.55)'
  if se is not None and mia <= 0.5 + 2 * se:
    text += ': no membership signal at this sample size'
  elif mia <= 0.55:
    text += ': a weak membership signal'
  else:
    text += ': training people can be recognised'
  copies = report.lookup(g, f'privacy.{space}.identical_copies')
  if copies is not None:
    text += f'; {int(copies)} synthetic people are identical copies of a training person'
  return text + '.'


def _utility(g: dict, metrics: dict) -> str | None:
  parts = []
  for section, name in RECOVERY_SECTIONS[:2]:
    rec = _get(g, f'{section}.recovery_min')
    if rec is not None:
      parts.append(f'{name} {rec:.3f} (target ≥ {RECOVERY_TARGET})')
  gwas = g.get('gwas') or {}
  if _num(gwas.get('direction_agreement')) is not None:
    parts.append(
      f'GWAS on it finds the real top hits with the same effect direction in '
      f'{gwas["direction_agreement"]:.0%} of {gwas["num_hits"]} and a Spearman correlation '
      f'of −log10 p of {gwas["spearman_log10p"]:.2f}'
    )
  if not parts:
    return None
  indep = metrics['methods'].get(INDEPENDENT, {})
  text = (
    'Utility: classifiers trained on the synthetic cohort and tested on real held-out people '
    'keep this share of the accuracy of the same classifiers trained on real train: '
    + '; '.join(parts)
    + '.'
  )
  if _get(indep, 'utility.recovery_min') is not None:
    if _get(indep, 'utility.recovery_min') >= RECOVERY_TARGET:
      text += ' Independent SNPs reach the recovery target too, so recovery alone says little here.'
  return text


def _mosaic(metrics: dict) -> str | None:
  dom = metrics.get('dominance')
  if not dom:
    return None
  if dom['dominates']:
    return (
      'Against the mosaic curve (copying real haplotype segments of shorter and shorter length, '
      f'from leaky to private), {dom["method"]} is better on every axis at its own level of '
      'privacy.'
    )
  lost = [a['name'] for a in dom['axes'].values() if a['outcome'] == 'loses']
  why = (
    'it is less private than every mosaic'
    if dom['position'] == 'above'
    else 'it loses on ' + ', '.join(protocol.named(n, metrics.get('holdout', 'test')) for n in lost)
  )
  return (
    'Against the mosaic curve (copying real haplotype segments, from leaky to private), '
    f'{dom["method"]} does not dominate: {why}.'
  )


def verdict(metrics: dict, method: str | None = None) -> str:
  """The plain-language paragraph at the top of the report ('' without `method`'s row).

  `method`: the judged row (default metrics['judged'], else 'gdiff').
  """
  method = method or metrics.get('judged', 'gdiff')
  g = metrics['methods'].get(method)
  if g is None:
    return ''
  ref = metrics.get('reference', {})
  parts = [_realism(g, ref), _privacy(g), _utility(g, metrics), _mosaic(metrics)]
  parts += guarantees(metrics)
  return ' '.join(p for p in parts if p)


# ------------------------------------------------------------------ privacy verdict
ATTACK_NAMES = {
  'af_lr': 'allele-frequency likelihood ratio (Sankararaman)',
  'af_homer': 'allele-frequency distance (Homer)',
  'distance': 'reference-calibrated nearest-synthetic distance',
}
MIA_TARGET = 0.55
KINSHIP_RELIABLE_MB = 100.0  # as sample.gate.kinship_min_span_mb: below, KING over-reads
NOT_COVERED = (
  'inference of a phenotype or other attribute of a known participant',
  'linkage with outside data (genealogy databases, surnames, other releases)',
  "attacks that use the trained model's parameters rather than its samples",
  'what the SNP list, allele frequencies and other statistics outside the generator reveal',
)


def _attack_text(name: str, a: dict) -> tuple[str, bool]:
  """('name AUC x ± se', passed): passed when within 2 SE of 0.5 or at most MIA_TARGET."""
  auc, se = _num(a.get('auc')), _num(a.get('auc_se')) or 0.0
  if auc is None:
    return '', True
  passed = auc <= 0.5 + 2 * se or auc <= MIA_TARGET
  return f'{ATTACK_NAMES.get(name, name)} {auc:.3f} ± {se:.3f}', passed


def privacy_verdict(metrics: dict) -> str:
  """The report's privacy paragraph: what was tested, what passed, what no test covers,
  and whether a differential-privacy guarantee holds (ε). '' without the attacks."""
  attacks = metrics.get('attacks')
  if not attacks:
    return ''
  tested, failed = [], []
  for name in ATTACK_NAMES:
    if name in attacks:
      text, passed = _attack_text(name, attacks[name])
      tested.append(text)
      if not passed:
        failed.append(ATTACK_NAMES[name])
  parts = [
    f'Privacy tests: membership attacks on {attacks.get("num_members")} training members vs '
    f'{attacks.get("num_non_members")} held-out people (AUC, 0.5 = chance): '
    + '; '.join(t for t in tested if t)
    + '.'
  ]
  parts.append(
    f'Failed (AUC above {MIA_TARGET} and 2 SE from chance): {", ".join(failed)}.'
    if failed
    else 'No attack tells members from held-out people beyond its noise or the target.'
  )
  kin = attacks.get('kinship') or {}
  syn, held = kin.get('synthetic'), kin.get('holdout')
  if syn and held:
    close = ('with_duplicate', 'with_first_degree')
    n_syn = sum(int(syn.get(d, 0)) for d in close)
    n_held = sum(int(held.get(d, 0)) for d in close)
    text = (
      f'KING kinship: {n_syn} of {syn["people"]} synthetic people are duplicates or '
      f'first-degree relatives of a training person ({n_held} of {held["people"]} real '
      'held-out people, the reference)'
    )
    span = _num(kin.get('span_mb'))
    if span is not None and span < KINSHIP_RELIABLE_MB:
      text += (
        f'; on {span:.1f} Mb of autosomes KING over-reads relatedness (its degree ranges are '
        'genome-wide averages), so compare the two counts only'
      )
    parts.append(text + '.')
  gate = attacks.get('gate') or {}
  if gate.get('enabled'):
    replaced = int(gate.get('replaced_people', 0))
    parts.append(
      f'The release gate replaced {replaced} synthetic '
      f'{"person" if replaced == 1 else "people"} before '
      f'writing ({gate.get("distance_rule", "")}; kinship: {gate.get("kinship_rule", "")}).'
    )
  elif gate:
    parts.append('The release gate was off: the synthetic people were written unscreened.')
  dp = metrics.get('dp') if isinstance(metrics.get('dp'), dict) else {}
  eps, delta = dp.get('epsilon'), _num(dp.get('delta')) or 0.0
  if _num(eps) is not None:
    parts.append(
      f'Differential privacy holds for the generator fit: ε = {eps:g}, δ = {delta:g} (person '
      'level); what it does not cover is listed in the manifest (dp.outside_guarantee).'
    )
    if gate.get('enabled'):
      parts.append('The release gate reads the training people, so its screening is outside ε.')
  elif isinstance(eps, float) and math.isinf(eps):
    parts.append('The fit clipped each person but added no noise: no DP guarantee (ε = ∞).')
  else:
    parts.append(
      'No differential-privacy guarantee: these tests are empirical, they bound what these '
      'attacks find, not what any attack could.'
    )
  parts.append('No test here covers ' + '; '.join(NOT_COVERED) + '.')
  return ' '.join(parts)


# ------------------------------------------------------------------ guarantees
def guarantees(metrics: dict) -> list[str]:
  """One sentence per formal guarantee in `metrics`: `dp` (differentially private
  training) and `gate` (the sample stage's release gate). The owners of those stages put
  what they guarantee there; this only says it.

  Recognised fields: dp {'epsilon', 'delta'}; gate {'checked', 'rejected', 'rule'}.
  Anything else present is listed as key=value.
  """
  out = []
  dp = metrics.get('dp')
  if isinstance(dp, dict):
    eps, delta = _num(dp.get('epsilon')), _num(dp.get('delta'))
    if eps is not None:
      text = f'Training was differentially private with ε = {eps:g}'
      text += f', δ = {delta:g}' if delta is not None else ''
      out.append(text + '.')
    else:
      out.append(f'Differential privacy: {_fields(dp)}.')
  gate = metrics.get('gate')
  if isinstance(gate, dict):
    checked, rejected = gate.get('checked'), gate.get('rejected')
    if isinstance(checked, int) and isinstance(rejected, int):
      rule = f' ({gate["rule"]})' if gate.get('rule') else ''
      out.append(
        f'The release gate checked {checked} synthetic people and withheld {rejected}{rule}.'
      )
    else:
      out.append(f'Release gate: {_fields(gate)}.')
  return out


def _fields(d: dict) -> str:
  return ', '.join(f'{k}={v}' for k, v in d.items())


# ------------------------------------------------------------------ warnings
def warnings(metrics: dict, method: str | None = None) -> dict[str, list[str]]:
  """section -> one line per metric that cannot discriminate (see the module docstring).

  Sections: 'key' (the key metrics table), 'utility', 'utility_genotype',
  'utility_hard_pair', 'gwas'. `method`: as in `verdict`.
  """
  method = method or metrics.get('judged', 'gdiff')
  out: dict[str, list[str]] = {}
  methods = metrics['methods']
  g, indep = methods.get(method, {}), methods.get(INDEPENDENT, {})
  ref = metrics.get('reference', {})

  for section, name in RECOVERY_SECTIONS:
    rec = _get(indep, f'{section}.recovery_min')
    if rec is not None and rec >= RECOVERY_TARGET:
      out.setdefault(section, []).append(
        f'The independent-SNPs baseline (no LD) reaches the {name} target ({rec:.3f} ≥ '
        f'{RECOVERY_TARGET}): recovery cannot tell here whether a cohort keeps LD.'
      )
    mine, sd = _get(g, f'{section}.recovery_min'), recovery_sd(g, section)
    if mine is not None and sd is not None and sd > abs(mine - RECOVERY_TARGET):
      out.setdefault(section, []).append(
        f'{method} {name} {mine:.3f} is within one seed sd ({sd:.3f}) of the target '
        f'{RECOVERY_TARGET}: pass or fail is noise.'
      )

  for path, name, target in SE_TARGETS:
    value, se = _get(g, path), _get(g, path + '_se')
    if value is None or se is None:
      continue
    if se > abs(value - target):
      out.setdefault('key', []).append(
        f'{method} {name} {value:.3f} ± {se:.3f}: the standard error is larger than the '
        f'margin to the target {target}; pass or fail is noise.'
      )
    ref_value = _get(ref, path)
    if ref_value is not None and abs(value - ref_value) < se and abs(value - 0.5) > 2 * se:
      out.setdefault('key', []).append(
        f'{method} {name} {value:.3f} is within one standard error ({se:.3f}) of the real '
        f'reference {ref_value:.3f}: the test cannot tell them apart.'
      )

  gw, gw_indep = g.get('gwas') or {}, indep.get('gwas') or {}
  hits = gw.get('num_hits')
  if isinstance(hits, int) and hits < 10:
    out.setdefault('gwas', []).append(
      f'Only {hits} real top hits: direction agreement and the rank correlation rest on few SNPs.'
    )
  mine, theirs = _num(gw.get('direction_agreement')), _num(gw_indep.get('direction_agreement'))
  if mine is not None and theirs is not None and theirs >= mine - 0.05:
    out.setdefault('gwas', []).append(
      f'The independent-SNPs baseline agrees on effect directions as well ({theirs:.2f} vs '
      f'{mine:.2f}): single-SNP association depends only on per-class allele frequencies, '
      'which that baseline keeps, so this GWAS cannot tell whether a cohort keeps LD.'
    )
  return out
