#!/usr/bin/env bash
# Runs ort_check.py (ONNX Runtime on the cases a Rust test wrote into DIR) in a venv
# holding onnxruntime and numpy, made on first use like benches/torch_baseline.sh.
# Exit 77: the venv could not be made (no Python, no registry): the caller skips.
#
#     bash tests/onnx/ort.sh DIR
set -u
here=$(cd "$(dirname "$0")" && pwd)
venv=${ORT_VENV:-${TMPDIR:-/tmp}/cnnc-ort-venv}
if ! "$venv/bin/python" -c 'import onnxruntime, numpy' 2>/dev/null; then
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q onnxruntime numpy; } >&2; then
    echo "cannot make a venv with onnxruntime at $venv" >&2
    exit 77
  fi
fi
exec "$venv/bin/python" "$here/ort_check.py" "$1"
