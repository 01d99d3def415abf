#!/usr/bin/env bash
# Every CUDA check in one call (≤ 8 minutes on a lent GPU): GPU-marked tests, the render and
# real-time benches at 512², a timed training step of the gpu preset and of the paper-sized
# ZipEnhancer. One JSON at $1 (default out/gpu.json). Without a GPU it runs the CPU fallbacks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
exec timeout 480 "$PY" -m services.bench.gpu --json "${1:-out/gpu.json}"
