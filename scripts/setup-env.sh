#!/usr/bin/env bash
# setup-env.sh: the project's virtual environment (.venv) and the Debian packages its tests use.
# Idempotent: a second run only checks. Progress lines start with "==> ".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "==> $*"; }

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
command -v pgrep >/dev/null 2>&1 || need+=(procps)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup-env.sh: error: missing Debian packages (${need[*]}); install them as root" >&2
        exit 1
    fi
    log "installing ${need[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
    # Debian starts these services on install; the tests start their own.
    systemctl disable --now docker-registry nginx >/dev/null 2>&1 || true
    pkill -x nginx >/dev/null 2>&1 || true
fi

if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
fi
stamp=.venv/.turing-installed
if [ ! -f "$stamp" ] || [ requirements-dev.txt -nt "$stamp" ] \
    || [ -n "$(find packages examples -name pyproject.toml -newer "$stamp" 2>/dev/null)" ]; then
    log "installing the packages and dev tools into .venv (a few minutes the first time)"
    pip_log=$(mktemp)
    if ! { .venv/bin/python -m pip install -q --upgrade pip \
           && .venv/bin/python -m pip install -q -r requirements-dev.txt; } >"$pip_log" 2>&1; then
        grep -v "^WARNING: Location" "$pip_log" | tail -n 40 >&2
        rm -f "$pip_log"
        echo "setup-env.sh: error: pip install -r requirements-dev.txt failed" >&2
        exit 1
    fi
    rm -f "$pip_log"
    touch "$stamp"
fi
