#!/usr/bin/env bash
# base-image.sh [TAG]: build the local Debian base image (default
# turing-base:bookworm) without any container registry.
#
#   1. debootstrap --variant=minbase bookworm into a temp dir, slimmed like
#      Debian's -slim images, tarred to /var/cache/turing-debootstrap/<suite>/
#      rootfs.tar (the .debs are cached there too); the temp dir is removed on
#      exit (trap). A later run reuses the tarball and skips debootstrap;
#   2. docker import of the tarball -> turing-rootfs:<suite> (reused if present);
#   3. docker build FROM it: python3, python3-venv, nginx-light, ca-certificates
#      (--no-install-recommends, apt lists removed in the same layer), a venv
#      at /opt/venv first on PATH (so `python`/`pip` work; Debian's system
#      python refuses pip installs, PEP 668), pip quiet/cacheless, CMD python3.
#
# Exits 0 at once if TAG exists, unless FORCE=1, which redoes every step
# (debootstrap included; only the cached .debs are reused).
# No host file is copied into the image: the CA bundle in it is the one that
# Debian's ca-certificates package generates, and apt sources stay http.
# Quiet unless failing; progress lines start with "==> ".
set -euo pipefail

TAG=${1:-turing-base:bookworm}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
ROOTFS_TAG=turing-rootfs:$SUITE
CACHE_DIR=${TURING_DEBOOTSTRAP_CACHE:-/var/cache/turing-debootstrap}/$SUITE
FORCE=${FORCE:-0}

log() { echo "==> $*"; }
die() { echo "base-image.sh: error: $*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
start=$SECONDS

if [ "$FORCE" != 1 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
    exit 0
fi

"$here/docker-up.sh"

old_ids=$(docker image inspect -f '{{.Id}}' "$TAG" "$ROOTFS_TAG" 2>/dev/null || true)

work=""
cleanup() {
    [ -n "$work" ] && [ -d "$work" ] || return 0
    # A failed debootstrap can leave proc/sys mounted inside the rootfs:
    # unmount everything below it (deepest first) before removing it.
    local m
    while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
        awk -v w="$work" '$2 == w || index($2, w "/") == 1 { print $2 }' /proc/mounts | sort -r)
    rm -rf --one-file-system "$work"
    rm -f "$CACHE_DIR/rootfs.tar.tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
work=$(mktemp -d "${TMPDIR:-/var/tmp}/turing-base.XXXXXX")
out=$work/log

run() {  # run quietly; on failure show the end of its output
    if ! "$@" >"$out" 2>&1; then
        tail -n 40 "$out" >&2
        die "failed: $*"
    fi
}

tarball=$CACHE_DIR/rootfs.tar
need_rootfs=0
if [ "$FORCE" = 1 ] || ! docker image inspect "$ROOTFS_TAG" >/dev/null 2>&1; then
    need_rootfs=1
fi
if [ "$need_rootfs" = 1 ] && { [ "$FORCE" = 1 ] || [ ! -s "$tarball" ]; }; then
    if ! command -v debootstrap >/dev/null 2>&1; then
        [ "$(id -u)" -eq 0 ] || die "debootstrap is not installed and this is not root"
        log "installing debootstrap"
        run apt-get update -q
        run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
    fi
    [ "$(id -u)" -eq 0 ] || die "debootstrap needs root"
    mkdir -p "$CACHE_DIR"
    rootfs=$work/rootfs
    log "debootstrap --variant=minbase $SUITE (cache: $CACHE_DIR)"
    run debootstrap --variant=minbase --cache-dir="$CACHE_DIR" "$SUITE" "$rootfs" "$MIRROR"

    # Container-friendly tidy-up; nothing of the host's stays in the rootfs.
    cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
SOURCES
    : >"$rootfs/etc/resolv.conf"           # debootstrap copied the host's
    echo localhost >"$rootfs/etc/hostname" # likewise
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log "$rootfs"/tmp/* 2>/dev/null || true
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        >"$rootfs/etc/apt/apt.conf.d/90turing-norecommends"
    # Slim like Debian's -slim images: no docs (but copyrights), man pages,
    # info or translations, now and for packages installed later.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90turing-slim" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
SLIM
    find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    find "$rootfs/usr/share/man" "$rootfs/usr/share/info" "$rootfs/usr/share/groff" \
        "$rootfs/usr/share/lintian" "$rootfs/usr/share/locale" ! -type d -delete 2>/dev/null || true

    tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball.tmp" .
    mv -f "$tarball.tmp" "$tarball"
    rm -rf --one-file-system "$rootfs"   # free the disk before the build
fi
if [ "$need_rootfs" = 1 ]; then
    log "importing the rootfs as $ROOTFS_TAG"
    if ! docker import -c 'CMD ["bash"]' -c "LABEL turing.image=rootfs-$SUITE" \
            -m "debootstrap --variant=minbase $SUITE" - "$ROOTFS_TAG" <"$tarball" >"$out" 2>&1; then
        tail -n 20 "$out" >&2; die "docker import failed"
    fi
fi

ctx=$work/context
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $ROOTFS_TAG
ARG DEBIAN_FRONTEND=noninteractive
ENV LANG=C.UTF-8
RUN apt-get update \\
 && apt-get -y upgrade \\
 && apt-get install -y --no-install-recommends \\
        python3 python3-venv nginx-light ca-certificates \\
 && apt-get clean \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log \\
 && python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip --version >/dev/null
# PATH spelled out: an imported rootfs has no ENV PATH, so \$PATH would be empty.
ENV VIRTUAL_ENV=/opt/venv \\
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PIP_NO_CACHE_DIR=1
CMD ["python3"]
DOCKERFILE

# Networking: the default bridge network is used for the build (it works
# here: apt reaches the http mirror through docker0's NAT). If a machine's
# bridge networking is broken, BUILD_NETWORK=host switches to --network host.
# Classic builder on purpose: this Dockerfile needs no BuildKit feature, and
# DOCKER_BUILDKIT=1 fails outright with docker CLI >= 23 when no buildx plugin
# is installed (Debian bookworm has no docker-buildx package).
log "building $TAG from $ROOTFS_TAG"
DOCKER_BUILDKIT=0 run docker build --pull=false --force-rm --network "${BUILD_NETWORK:-default}" \
    --label turing.image="base-$SUITE" \
    -t "$TAG" "$ctx"
# A FORCE rebuild leaves the previous images untagged: remove them (with the
# build's intermediate images under them), unless something still uses them.
for id in $old_ids; do
    [ "$(docker image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null || echo 1)" = 0 ] \
        && docker rmi "$id" >/dev/null 2>&1 || true
done

size=$(docker image inspect -f '{{.Size}}' "$TAG")
log "$TAG built in $((SECONDS - start))s, size $((size / 1000000)) MB"
