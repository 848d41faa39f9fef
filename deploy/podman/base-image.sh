#!/usr/bin/env bash
# Prints the tag of a local Debian base image for the project's Dockerfiles, building it first
# when this machine does not have it yet. For hosts that cannot pull python:*-slim (no registry
# reachable): the image is made from Debian packages only, from the host's own apt sources.
#
#   tag=$(deploy/podman/base-image.sh)
#   podman-compose ... build --build-arg PYTHON_IMAGE=$tag      (or the test override file)
#
# The tag is a hash of everything that goes in (this script, the apt sources, the package
# list), so a changed input makes a new image and an unchanged one is reused: a cache on this
# machine only, never shipped anywhere. Needs root (mmdebstrap's root mode) and podman.
set -euo pipefail
script=$(realpath "$0")

suite=bookworm
# The Dockerfiles' `python -m venv` needs python3-venv and the name `python`; the CA bundle is
# the one pip uses (and the one the host's is mounted over, deploy/podman/containers.conf).
packages=python3,python3-venv,python-is-python3,ca-certificates
sources=${DIGITS_APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}
[[ -f $sources ]] || sources=/etc/apt/sources.list
name=localhost/digits-base

hash=$( { cat "$script"; echo "$suite $packages"; cat "$sources"; } | sha256sum | cut -c1-16)
tag="$name:$hash"
if ! podman image exists "$tag"; then
  echo "base-image: building $tag from $sources (mmdebstrap, $suite minbase)" >&2
  # minbase: only Essential packages + apt, then ours; no manuals, translations or docs
  # (licences kept); no apt lists (the stand-in images run apt-get update themselves).
  mmdebstrap --quiet --variant=minbase --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$suite" - "$sources" |
    podman import --quiet \
      --change 'CMD ["python3"]' \
      --change 'ENV LANG=C.UTF-8' \
      - "$tag" >/dev/null
fi
echo "$tag"
