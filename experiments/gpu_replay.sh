#!/usr/bin/env bash
# Paper B's students on a lent GPU machine that has JAX but no TensorFlow and no Keras,
# reached by calls of at most 10 minutes that carry at most 64 MiB and bring back at most
# 8 files. The README's "Paper scale on a GPU machine" walks through it.
#
#   here:   experiments/gpu_replay.sh prepare        wheels, the pack, the teacher (TensorFlow)
#   here:   experiments/gpu_replay.sh stage K        gpu_in/ with shard K (- for none) and the runs so far
#   there:  bash experiments/gpu_replay.sh slice M   one call: take the shards, train for M minutes
#   here:   experiments/gpu_replay.sh collect FILE   merge a slice's runs.tgz into runs/
#   here:   experiments/gpu_replay.sh finish         CPU timing (TensorFlow) and the report
#
# Settings (environment): PRESET (gpu), DATA (../shared/data/cats_vs_dogs), SEED (0),
# SIZE (224: the pack's image side), SHARD_MIB (24), PYVER (3.12: the GPU machine's Python),
# KD (the kd-keras command here), PYTHON (the python there), RESULTS and FIGURES (the report's).
set -euo pipefail
cd "$(dirname "$0")/.."

PRESET=${PRESET:-gpu}
DATA=${DATA:-../shared/data/cats_vs_dogs}
SEED=${SEED:-0}
SIZE=${SIZE:-224}
SHARD_MIB=${SHARD_MIB:-24}
PYVER=${PYVER:-3.12}
KD=${KD:-.venv/bin/kd-keras}
PYTHON=${PYTHON:-python3}
NAME=$(basename "$DATA")
PACK=gpu_data/$NAME             # the pack here, and where its shards gather there
GROUP=runs/$NAME-$PRESET/seed$SEED
IN=gpu_in                       # what one call carries (git-ignored)

small_files() {  # what the report needs of a group's runs: no models, no resume state
  find "$1" \( -name config.json -o -name split.json -o -name history.csv -o -name metrics.json \
    -o -name predictions.npz \) -print
}

case "${1:-}" in
prepare)
  rm -rf "$IN" && mkdir -p "$IN/wheels" "$IN/pack"
  # Keras and what it needs beyond the GPU machine's packages (namex, optree and optree's
  # typing-extensions), for its Python.
  KERAS=$(.venv/bin/python -c "from importlib.metadata import version; print(version('keras'))")
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$IN/wheels" "keras==$KERAS" namex optree typing-extensions
  [ -f "$PACK/pack.json" ] || $KD pack "$DATA" --image-size "$SIZE" --max-mib "$SHARD_MIB" --out "$PACK"
  # The teacher here (TensorFlow, offline ImageNet weights): the GPU trains students only.
  $KD teacher --preset "$PRESET" --data-dir "$PACK" --runs-dir runs --seed "$SEED" --quiet
  small_files "$GROUP/teacher" | tar czf "$IN/teacher.tgz" -T -
  du -sh "$IN" "$PACK"/shard-*.tar
  ;;
stage)
  K=${2:?usage: stage K (a shard number, or - for none: the training calls)}
  rm -f "$IN"/pack/*
  cp "$PACK/pack.json" "$IN/pack/"
  [ "$K" = - ] || cp "$(printf '%s/shard-%03d.tar' "$PACK" "$K")" "$IN/pack/"
  [ -f runs.tgz ] && cp runs.tgz "$IN/runs.tgz" || true  # runs finished so far, for a fresh machine
  du -sh "$IN"
  ;;
slice)
  MINUTES=${2:?usage: slice MINUTES}
  OUT=${OUT:?set OUT: the folder whose files come back}
  mkdir -p /tmp/site
  if compgen -G "$IN/wheels/*.whl" > /dev/null && [ ! -f /tmp/site/.installed ]; then
    $PYTHON -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$IN"/wheels/*.whl
    touch /tmp/site/.installed
  fi
  export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=${KERAS_BACKEND:-jax}
  mkdir -p "$PACK" && cp -n "$IN"/pack/* "$PACK"/ 2>/dev/null || true
  missing=$($PYTHON - "$PACK" <<'EOF'
import json, os, sys
manifest = json.load(open(os.path.join(sys.argv[1], "pack.json")))
print(" ".join(s["file"] for s in manifest["shards"] if not os.path.exists(os.path.join(sys.argv[1], s["file"]))))
EOF
)
  if [ -n "$missing" ]; then
    echo "gathered $(ls "$PACK"/shard-*.tar | wc -l) shard(s); still to carry: $missing"
    exit 0
  fi
  [ -f "$GROUP/teacher/metrics.json" ] || tar xzf "$IN/teacher.tgz"
  [ ! -f "$IN/runs.tgz" ] || [ -d "$GROUP/student-classic" ] || tar xzf "$IN/runs.tgz"
  status=0
  $PYTHON -m kd_keras.cli recursive --preset "$PRESET" --data-dir "$PACK" --runs-dir runs --seed "$SEED" \
    --stop-after "$MINUTES" --quiet 2>&1 | tee "$OUT/slice.log" || status=${PIPESTATUS[0]}
  small_files "$GROUP" | tar czf "$OUT/runs.tgz" -T -
  nvidia-smi --query-gpu=name,memory.used --format=csv > "$OUT/gpu.csv" 2>/dev/null || true
  case $status in
    0) echo "slice: every run of $GROUP is complete" ;;
    3) echo "slice: time is up; call slice again to resume" ;;
    *) echo "slice: failed with exit code $status"; exit "$status" ;;
  esac
  ;;
collect)
  BUNDLE=${2:?usage: collect RUNS_TGZ}
  tar xzf "$BUNDLE"               # runs/<group>/seed<N>/<run>/{config,split,history,metrics,predictions}
  cp "$BUNDLE" runs.tgz           # carried back by the next stage, should the machine be a fresh one
  ls "$GROUP"
  ;;
finish)
  $KD bench --preset "$PRESET" --data-dir "$PACK" --runs-dir runs --seed "$SEED" --threads 2 --quiet
  $KD report --runs-dir runs --out "${RESULTS:-results}" --figures "${FIGURES:-figures}"
  ;;
*)
  sed -n '2,16p' "$0"
  exit 2
  ;;
esac
