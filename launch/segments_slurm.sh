#!/usr/bin/env bash
# Fits an ar.segments plan on SLURM: one job-array task per segment, then one job that
# depends on the whole array (afterok) for the rest of the pipeline: train (records the
# segments, refits nothing), sample, evaluate.
#
#   launch/segments_slurm.sh --config=configs/kg1.py --workdir=SHARED_DIR/run1 \
#     --config.ar.segments=chromosome [--config.ar.ancestry_pcs=2 ...]
#   launch/segments_slurm.sh --dry-run ...   (no SLURM: prints each sbatch command and runs
#                                             its job here, the array tasks one by one)
#
# Run it on the login node: the first job (prepare, then `gdiff.segments --list`, which
# also fits the shared ancestry code) is submitted with `sbatch --wait`, because the size
# of the array is the length of that list. The workdir must be on a file system every
# node sees. Partition, time and account come from sbatch's own environment variables
# (SBATCH_PARTITION, SBATCH_TIMELIMIT, SBATCH_ACCOUNT, ...); GDIFF_SBATCH_ARGS adds more
# options to every job. If array tasks fail, the last job is cancelled (afterok never holds);
# fix the cause and run the same command again: segments with a done-record are skipped
# (gdiff.ar.segments), so only the failed ones refit.
set -euo pipefail
dry=0
if [[ ${1:-} == --dry-run ]]; then
  dry=1
  shift
fi
[[ $# -gt 0 ]] || {
  echo 'usage: launch/segments_slurm.sh [--dry-run] gdiff.main-flags...' >&2
  exit 2
}
py=$(printf '%q' "${PYTHON:-python}")
workdir=
for a in "$@"; do
  [[ $a == --workdir=* ]] && workdir=${a#--workdir=}
done
[[ -n $workdir ]] || {
  echo 'segments_slurm.sh: give the workdir as --workdir=DIR' >&2
  exit 2
}
read -r -a extra <<<"${GDIFF_SBATCH_ARGS:-}"
args=$(printf '%q ' "$@")

# submit NAME WRAP [sbatch options...]: prints the job id (dry run: runs WRAP here).
submit() {
  local name=$1 wrap=$2
  shift 2
  local cmd=(sbatch --parsable --job-name="gdiff-$name" "${extra[@]}" "$@" --wrap="$wrap")
  if ((dry)); then
    printf '%q ' "${cmd[@]}" >&2
    echo >&2
    local array
    array=$(printf '%s\n' "$@" | sed -n 's/^--array=0-//p')
    local rc=0
    if [[ -n $array ]]; then # every task runs, as in SLURM; any failure fails the array
      for ((i = 0; i <= array; i++)); do
        SLURM_ARRAY_TASK_ID=$i bash -c "$wrap" >&2 || rc=1
      done
    else
      bash -c "$wrap" >&2 || rc=1
    fi
    echo "dry-$name"
    return "$rc"
  else
    "${cmd[@]}"
  fi
}

submit plan "$py -m gdiff.main $args --mode=prepare && $py -m gdiff.segments $args --list" \
  --wait >/dev/null
k=$(wc -l <"$workdir/checkpoints/ar/segments.txt")
array=$(submit segment "$py -m gdiff.segments $args --index=\$SLURM_ARRAY_TASK_ID" \
  --array=0-$((k - 1)))
rest=$(submit rest "$py -m gdiff.main $args --mode=all" --dependency=afterok:"${array%%;*}" \
  --kill-on-invalid-dep=yes)
echo "segments: $k (array job $array); train, sample and evaluate: job $rest"
