#!/usr/bin/env bash
# Paper B's students on a remote GPU machine reached only through size-limited transfers: one call of
# at most 10 minutes that carries at most 64 MiB (this tree and gpu_in/) and brings back at most 8
# files, on a machine with Python, JAX and NumPy but no TensorFlow, Keras, optree or namex. Everything
# the call needs travels in it, and nothing depends on a second call.
#
#   here:   experiments/gpu_replay.sh prepare        gpu_in/: wheels, the data packed, the teacher's runs
#   there:  bash experiments/gpu_replay.sh slice M   train every student and generation within M minutes
#   here:   experiments/gpu_replay.sh collect DIR    merge the call's runs.tgz into runs/ and the archive
#   here:   experiments/gpu_replay.sh finish         CPU timing (TensorFlow) and the report
#
# Settings (environment): PRESET (gpu), DATA (../shared/data/cats_vs_dogs), SEED (0), SIZE (224: the
# pack's image side), QUALITY (40: WebP quality, what fits 64 MiB; README, "One call to a remote GPU"),
# PYVER (3.12: the remote Python), KD (the kd-keras command here), PYTHON (the python there),
# ARCHIVE (results/runs), RESULTS and FIGURES (the report's), LIMIT_MIB (64). prepare writes PRESET,
# SEED and the data's name into gpu_in/settings.env, which the other steps read.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != prepare ] && [ -f gpu_in/settings.env ]; then
  source gpu_in/settings.env
fi

PRESET=${PRESET:-gpu}
DATA=${DATA:-../shared/data/cats_vs_dogs}
SEED=${SEED:-0}
SIZE=${SIZE:-224}
QUALITY=${QUALITY:-40}
PYVER=${PYVER:-3.12}
KD=${KD:-.venv/bin/kd-keras}
PYTHON=${PYTHON:-python3}
LIMIT_MIB=${LIMIT_MIB:-64}
NAME=${NAME:-$(basename "$DATA")}
IN=gpu_in                       # what the call carries besides the tree (git-ignored)
PACK=$IN/$NAME                  # the data, packed; runs name their group after it: $NAME-$PRESET
GROUP=runs/$NAME-$PRESET/seed$SEED

small_files() {  # what the report needs of a group's runs: no models, no resume state
  find "$@" \( -name config.json -o -name split.json -o -name history.csv -o -name metrics.json \
    -o -name predictions.npz -o -name budget.json \) -print
}

case "${1:-}" in
prepare)
  rm -rf "$IN" && mkdir -p "$IN/wheels"
  printf 'PRESET=%s\nSEED=%s\nNAME=%s\n' "$PRESET" "$SEED" "$NAME" > "$IN/settings.env"
  # Keras and what it needs beyond the remote machine's packages (namex, optree, and optree's
  # typing-extensions, which the machine has but a recipe should not count on), for its Python.
  KERAS=$(.venv/bin/python -c "from importlib.metadata import version; print(version('keras'))")
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$IN/wheels" "keras==$KERAS" namex optree typing-extensions
  $KD pack "$DATA" --image-size "$SIZE" --max-mib 60 --quality "$QUALITY" --out "$PACK"
  # The teacher here (TensorFlow, offline ImageNet weights): the GPU trains students only, from its
  # predictions, which travel as the teacher run's small files.
  $KD teacher --preset "$PRESET" --data-dir "$PACK" --runs-dir runs --seed "$SEED" --quiet
  small_files "$GROUP/teacher" | tar czf "$IN/teacher.tgz" -T -
  tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
  carried=$(du -sb "$IN" | cut -f1)
  echo "the call carries $(( (tree + carried) / 1048576 )) MiB: the tree $(( tree / 1048576 )) MiB and $IN/ \
$(( carried / 1048576 )) MiB (limit $LIMIT_MIB MiB)"
  if (( tree + carried > LIMIT_MIB * 1048576 )); then
    echo "error: over $LIMIT_MIB MiB; prepare again with a lower QUALITY" >&2
    exit 2
  fi
  ;;
slice)
  MINUTES=${2:?usage: slice MINUTES}
  OUT=${OUT:?set OUT: the folder whose files come back}
  if compgen -G "$IN/wheels/*.whl" > /dev/null; then
    $PYTHON -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$IN"/wheels/*.whl
    export PYTHONPATH=/tmp/site:$PWD
  fi
  export KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
  [ -f "$GROUP/teacher/metrics.json" ] || tar xzf "$IN/teacher.tgz"
  status=0
  $PYTHON -m kd_keras.cli recursive --preset "$PRESET" --data-dir "$PACK" --runs-dir runs --seed "$SEED" \
    --budget-minutes "$MINUTES" --quiet 2>&1 | tee "$OUT/slice.log" || status=${PIPESTATUS[0]}
  small_files "$GROUP" | tar czf "$OUT/runs.tgz" -T -
  nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv > "$OUT/gpu.csv" 2>/dev/null || true
  case $status in
    0) echo "slice: every run of $GROUP is complete" ;;
    3) echo "slice: the budget ran out before every run was complete (see slice.log)" ;;
    *) echo "slice: failed with exit code $status"; exit "$status" ;;
  esac
  ;;
collect)
  FROM=${2:?usage: collect DIR (the folder holding the call\'s runs.tgz)}
  tar xzf "$FROM/runs.tgz"        # runs/<group>/seed<N>/<run>/{config,split,history,metrics,predictions}
  cp "$FROM"/slice.log "$GROUP/" 2>/dev/null || true
  $KD archive --runs-dir runs --to "${ARCHIVE:-results/runs}"
  ls "$GROUP"
  ;;
finish)
  $KD bench --preset "$PRESET" --data-dir "$PACK" --runs-dir runs --seed "$SEED" --threads 2 --quiet
  $KD archive --runs-dir runs --to "${ARCHIVE:-results/runs}"
  $KD report --runs-dir "${ARCHIVE:-results/runs}" --out "${RESULTS:-results}" --figures "${FIGURES:-figures}"
  ;;
*)
  sed -n '2,15p' "$0"
  exit 2
  ;;
esac
