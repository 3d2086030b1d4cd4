#!/usr/bin/env bash
# Regenerate configs/constraints.txt, the exact versions the README's commands and .ci/run install.
# Resolves the project (+ the extras below) in a throw-away venv on top of the CPU torch, then
# freezes it. torch itself is left out: its own command installs it first (CPU or CUDA build).
#   bash scripts/update_lock.sh                       # newest versions pyproject.toml allows
#   bash scripts/update_lock.sh transformers==5.23.0  # ...with extra pins passed to pip
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(mktemp -d)/venv
python3 -m venv "$venv"
"$venv/bin/pip" install -q torch==2.13.0
"$venv/bin/pip" install -q -e '.[test,gguf]' "$@"
{
  echo "# Exact versions for the README's two commands and .ci/run (pip constraints: pip install -e . -c configs/constraints.txt)."
  echo "# Made by scripts/update_lock.sh $* on $(date -u +%F) with $("$venv/bin/python" --version); checked by scripts/check_lock.py."
  echo "# torch is not here: install it first (CPU: pip install torch==2.13.0; GPU: the build for your CUDA)."
  "$venv/bin/pip" freeze --exclude-editable | grep -v -i -E '^(torch|selfdistill)=='
} > configs/constraints.txt
rm -rf "$(dirname "$venv")"
echo "wrote configs/constraints.txt ($(grep -c '==' configs/constraints.txt) pins)"
