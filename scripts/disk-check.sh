#!/usr/bin/env bash
# disk-check.sh: make sure the test suite has the disk it needs before it starts.
#
# A full run needs about 12 GB free (the .venv, the local base image, the test images and their
# build stages). Docker's data root and this checkout are usually on the same disk, and images
# left by earlier runs are the usual reason it is full (seen here: 74 GB of dangling test images,
# then pip failing with "No space left on device"). So when space is short and a Docker engine
# answers, dangling images are pruned (CI=true or DISK_CHECK_PRUNE=1 only: on a developer's
# machine we say what to run instead of deleting their images). Fails with one line if still short.
# Env: DISK_NEED_GB (12).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need_gb="${DISK_NEED_GB:-12}"
free_gb() { df -Pk "$1" | awk 'NR==2 { printf "%d", $4 / 1048576 }'; }
docker_root() { timeout 20 docker info --format '{{.DockerRootDir}}' 2>/dev/null || echo /var/lib/docker; }

root=$(docker_root)
[ -d "$root" ] || root=/
lowest() { local a b; a=$(free_gb .); b=$(free_gb "$root"); echo $(( a < b ? a : b )); }

free=$(lowest)
echo "==> disk: ${free} GB free (need ${need_gb})"
[ "$free" -ge "$need_gb" ] && exit 0

if [ "${CI:-}" = "true" ] || [ "${DISK_CHECK_PRUNE:-}" = "1" ]; then
    if timeout 20 docker info >/dev/null 2>&1; then
        echo "==> low on disk: pruning dangling Docker images and build cache"
        docker image prune -f | tail -n 1
        docker builder prune -f >/dev/null 2>&1 || true
        free=$(lowest)
        echo "==> disk: ${free} GB free after pruning"
        [ "$free" -ge "$need_gb" ] && exit 0
    fi
    echo "disk-check.sh: error: only ${free} GB free on the checkout or Docker's data root (${root}); the tests need ${need_gb} GB" >&2
    exit 1
fi
echo "disk-check.sh: error: only ${free} GB free (need ${need_gb} GB); 'docker image prune' frees what earlier runs left, or set DISK_CHECK_PRUNE=1 to let this script do it" >&2
exit 1
