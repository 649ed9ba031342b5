#!/usr/bin/env bash
# `make smoke`: build the sdist and the wheel, install the wheel (with [sim], not editable) into a fresh
# venv in a temporary directory outside the source tree, and run wheel_smoke.py from there.
# Usage: tests/smoke/run.sh BUILD_PYTHON BASE_PYTHON
set -euo pipefail
source_tree="$(cd "$(dirname "$0")/../.." && pwd)"
build_python="$1"
base_python="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$SECONDS
"$build_python" -m build --outdir "$work/dist" "$source_tree" > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
ls "$work/dist"/*.tar.gz > /dev/null  # the sdist was built too (the wheel is built from it)
"$base_python" -m venv "$work/venv"
# --no-compile: byte-compiling msgraph-sdk's thousands of modules would double the install time.
"$work/venv/bin/python" -m pip install --quiet --no-compile "$(ls "$work/dist"/*.whl)[sim]" 2>&1 \
  | { grep -v "^WARNING: Location" || true; }
echo "built and installed in $((SECONDS - start)) s"
cd "$work"
"$work/venv/bin/python" "$source_tree/tests/smoke/wheel_smoke.py" "$source_tree"
echo "make smoke took $((SECONDS - start)) s"
