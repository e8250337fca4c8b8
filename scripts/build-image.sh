#!/usr/bin/env bash
# Build the image with podman where no registry can be reached (`make image`, tests/test_image.py):
#   scripts/build-image.sh [TAG]          (default localhost/raner-pool:test)
# - the base is Debian bookworm + Python 3.11 made by debootstrap from the Debian archive and kept as
#   localhost/raner-pool-base:bookworm, so only the first build makes it (~1 min);
# - the CPU torch wheel comes from the host's pip find-links ($PIP_FIND_LINKS or pip's config) when a directory
#   there holds torch 2.13.0+cpu, mounted read-only into the build; otherwise from the PyTorch CPU index (the
#   Dockerfile's default);
# - the host's CA bundle is mounted into the build steps and given to pip (package traffic may pass a TLS proxy
#   that only the host trusts);
# - podman keeps each layer, so a rebuild after a source change redoes only the last few (seconds).
# Elsewhere, with Docker and a registry, plain `docker build .` builds the same Dockerfile from python:3.11-slim.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${1:-localhost/raner-pool:test}
BASE=localhost/raner-pool-base:bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
TORCH_WHEEL=torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
# crun fails on hybrid cgroups (cgroup v1 hosts); runc with cgroupfs works there and everywhere else
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs)

if ! "${PODMAN[@]}" image exists "$BASE"; then
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    echo "making $BASE with debootstrap from $DEBIAN_MIRROR"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$DEBIAN_MIRROR" \
        > "$root.log" 2>&1 || { tail -20 "$root.log"; exit 1; }
    rm -f "$root.log"
    # what an image never needs: apt's caches and lists, documentation, translations (128 MB is left)
    rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
        "$root"/usr/share/locale/* "$root"/usr/share/info/*
    tar -C "$root" -c . | "${PODMAN[@]}" import --change 'CMD ["/bin/bash"]' - "$BASE" > /dev/null
fi

build_args=(--build-arg "BASE_IMAGE=$BASE")
volumes=()
if [ -f "$CA_BUNDLE" ]; then
    volumes+=(-v "$CA_BUNDLE:$CA_BUNDLE:ro")
    build_args+=(--build-arg "PIP_CERT=$CA_BUNDLE")
fi
pip_links=$(.venv/bin/pip config get global.find-links 2>/dev/null || true)
for dir in ${PIP_FIND_LINKS:-} $pip_links; do
    if [ -f "$dir/$TORCH_WHEEL" ]; then
        volumes+=(-v "$dir:/torch-wheels:ro")
        build_args+=(--build-arg "TORCH_SOURCE=--find-links /torch-wheels")
        break
    fi
done

# --format docker keeps HEALTHCHECK (the OCI format has no such field); --network host: the build steps use the
# host's network (podman's own networks need iptables rules this kind of machine may not allow)
previous=$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
"${PODMAN[@]}" build --format docker --network host --layers "${build_args[@]}" "${volumes[@]}" -t "$TAG" .
# the image this tag named before, now untagged, goes (its layers that the new one shares stay)
current=$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$TAG")
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
    "${PODMAN[@]}" rmi "$previous" > /dev/null 2>&1 || true
fi
