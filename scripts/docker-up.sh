#!/usr/bin/env bash
# docker-up.sh: make a Docker engine available on this machine.
#
#   - exits 0 at once if `docker info` already answers;
#   - installs Debian's docker.io (and debootstrap) when dockerd is missing
#     (root only; otherwise a one-line error, exit 1);
#   - starts dockerd in the background (nohup, own session) with the daemon's
#     defaults (overlay2 storage, bridge networking, iptables), logs to
#     /var/log/dockerd-turing.log (or $TMPDIR if /var/log is not writable),
#     waits up to DOCKERD_WAIT seconds (60) for `docker info` to answer and
#     prints the log tail and exits 1 if it does not.
#
# Leaves nothing running but dockerd itself (and the containerd it manages).
# Env: DOCKERD_ARGS   extra dockerd arguments (word-split), e.g.
#                     "--storage-driver=vfs" on a kernel without overlayfs.
#                     (A second test daemon beside a running one needs its own
#                     --data-root/--exec-root/--pidfile and DOCKER_HOST; note
#                     that "--bridge=none" makes dockerd DELETE an existing
#                     docker0, breaking the other daemon's bridge network.)
#      DOCKERD_LOG    log file;  DOCKERD_WAIT  seconds to wait (60).
# Quiet unless failing; progress lines start with "==> ".
set -euo pipefail

log() { echo "==> $*"; }
die() { echo "docker-up.sh: error: $*" >&2; exit 1; }

docker_ok() { timeout 20 docker info >/dev/null 2>&1; }

command -v docker >/dev/null 2>&1 && docker_ok && exit 0

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || die "dockerd is not installed and this is not root: run 'apt-get install docker.io' as root (or start a Docker engine) first"
    log "installing docker.io and debootstrap from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt_log=$(mktemp)
    if ! { apt-get update -q && apt-get install -y -q --no-install-recommends \
            docker.io debootstrap iptables ca-certificates; } >"$apt_log" 2>&1; then
        tail -n 30 "$apt_log" >&2; rm -f "$apt_log"
        die "apt-get install docker.io failed"
    fi
    rm -f "$apt_log"
    hash -r
    # A package's postinst may have started the service itself.
    docker_ok && exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    err=$(timeout 20 docker info 2>&1 >/dev/null | grep -m1 . || true)
    die "no Docker engine answers (${err:-docker info failed}) and starting dockerd needs root"
fi

# Daemon settings, honouring DOCKER_HOST when it names a unix socket.
read -r -a extra_args <<<"${DOCKERD_ARGS:-}"
pidfile=/var/run/docker.pid
for ((i = 0; i < ${#extra_args[@]}; i++)); do
    case "${extra_args[$i]}" in
        --pidfile=*|-p=*) pidfile=${extra_args[$i]#*=} ;;
        --pidfile|-p) pidfile=${extra_args[$((i + 1))]:-$pidfile} ;;
    esac
done
host_args=()
case "${DOCKER_HOST:-}" in
    unix://*) host_args=(-H "$DOCKER_HOST") ;;
    "") ;;
    *) die "DOCKER_HOST=$DOCKER_HOST is not a local unix socket and does not answer" ;;
esac

if [ -z "${DOCKERD_LOG:-}" ]; then
    if [ -w /var/log ]; then DOCKERD_LOG=/var/log/dockerd-turing.log
    else DOCKERD_LOG=${TMPDIR:-/tmp}/dockerd-turing.log; fi
fi

# A dockerd that is still starting up (its pid file names a live dockerd):
# wait for it rather than start a second one, which would fail on the pid file.
running_pid=""
started=0
if [ -s "$pidfile" ]; then
    p=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null || true)" = dockerd ]; then
        running_pid=$p
    fi
fi

if [ -n "$running_pid" ]; then
    log "dockerd (pid $running_pid) is running but not answering yet; waiting"
else
    log "starting dockerd (log: $DOCKERD_LOG)"
    # setsid+nohup: the daemon outlives this script and its caller's process
    # group; stdin from /dev/null so it holds no terminal or pipe open.
    setsid nohup dockerd "${host_args[@]}" "${extra_args[@]}" \
        </dev/null >>"$DOCKERD_LOG" 2>&1 &
    running_pid=$!
    started=1
fi

wait_s=${DOCKERD_WAIT:-60}
why="did not answer 'docker info' within ${wait_s}s"
for ((t = 0; t < wait_s; t++)); do
    if docker_ok; then
        log "docker engine up after ${t}s ($(docker info --format '{{.ServerVersion}}, {{.Driver}}' 2>/dev/null))"
        exit 0
    fi
    if ! kill -0 "$running_pid" 2>/dev/null; then why="exited after ${t}s"; break; fi
    sleep 1
done

echo "docker-up.sh: error: dockerd $why; end of $DOCKERD_LOG (info lines left out):" >&2
grep -v 'level=info' "$DOCKERD_LOG" 2>/dev/null | tail -n 20 >&2 || true
# Do not leave behind a half-started daemon that this script started itself.
if [ "$started" = 1 ] && kill -0 "$running_pid" 2>/dev/null \
   && [ "$(cat "/proc/$running_pid/comm" 2>/dev/null || true)" = dockerd ]; then
    echo "docker-up.sh: stopping the dockerd it started (pid $running_pid)" >&2
    kill -TERM "$running_pid" 2>/dev/null || true
    for ((t = 0; t < 15; t++)); do kill -0 "$running_pid" 2>/dev/null || break; sleep 1; done
fi
exit 1
