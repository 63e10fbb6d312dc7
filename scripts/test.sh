#!/usr/bin/env bash
# test.sh: the whole test suite, as CI runs it: lint, types, docs, unit, process and Docker
# end-to-end tests. Installs what it needs, starts dockerd, builds the local base image.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k plugins`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/docker-up.sh
bash scripts/disk-check.sh
bash scripts/setup-env.sh
bash scripts/base-image.sh

echo "==> ruff"
.venv/bin/ruff check packages tests examples scripts bench
echo "==> mypy"
.venv/bin/mypy
echo "==> docs (mkdocs build --strict)"
.venv/bin/mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
echo "==> pytest"
exec .venv/bin/python -m pytest --durations=25 "$@"
