#!/usr/bin/env bash
# Fits every segment of an ar.segments plan in N processes on this machine, then runs
# the rest of the pipeline: train (records the segments, refits nothing), sample,
# evaluate. A failed segment stops the run after the others finish; run the same
# command again and only the segments without a done-record are fit (gdiff.ar.segments).
#
#   launch/segments_local.sh 4 --config=configs/kg1.py --workdir=runs/g \
#     --config.ar.segments=chromosome [--config.ar.ancestry_pcs=2 ...]
#
# Every argument after N goes to each gdiff command (give no --mode). PYTHON picks the
# interpreter (default: python). Each process gets one CPU device.
set -euo pipefail
n=${1:?usage: launch/segments_local.sh NUM_PROCESSES gdiff.main-flags...}
shift
py=${PYTHON:-python}
export JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
"$py" -m gdiff.main "$@" --mode=prepare
# The plan (and, with ar.ancestry_pcs > 0, the shared ancestry code, fit once here).
k=$("$py" -m gdiff.segments "$@" --list | wc -l)
echo "segments: $k, in $n processes"
# xargs runs the others to the end when one fails, then exits non-zero (set -e stops here).
seq 0 $((k - 1)) | xargs -P "$n" -I{} "$py" -m gdiff.segments "$@" --index={}
"$py" -m gdiff.main "$@" --mode=all
