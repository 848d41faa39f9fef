#!/usr/bin/env bash
# Idempotent setup: system packages (optional), a virtualenv in .venv, and the
# project installed into it. Fast the second time: pip skips what is there.
#
#   scripts/setup.sh                 serving side + clients with plotting (no TensorFlow)
#   scripts/setup.sh --dev           + test tools and tritonclient
#   scripts/setup.sh --dev --train   + TensorFlow/Keras/tf2onnx for training
#   scripts/setup.sh --system        + Debian's prometheus, nginx, chromium, postgresql (tests, local cluster),
#                                      podman (the compose test)
set -euo pipefail
cd "$(dirname "$0")/.."

# The clients' plots (digits-client grid, which the demo draws) need the plot extra.
extras=(plot)
system=0
for arg in "$@"; do
  case "$arg" in
    --dev) extras+=(dev) ;;
    --train) extras+=(train) ;;
    --system) system=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

if [[ $system == 1 ]]; then
  need=()
  command -v prometheus >/dev/null || need+=(prometheus)
  command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
  # The web page's browser tests drive exactly these two paths.
  [[ -x /usr/bin/chromium ]] || need+=(chromium)
  [[ -x /usr/bin/chromedriver ]] || need+=(chromium-driver)
  command -v h2load >/dev/null || need+=(nghttp2-client)  # native gRPC load generator (bench)
  # The C++ transport floor (bench/native_floor/): g++ and grpc++'s development files.
  command -v g++ >/dev/null || need+=(g++)
  command -v pkg-config >/dev/null || need+=(pkg-config)
  pkg-config --exists grpc++ 2>/dev/null || need+=(libgrpc++-dev)
  command -v curl >/dev/null || need+=(curl)  # docs/learning.md's by-hand loop (and its test)
  # A real Postgres for the feedback store's tests (started per test session, never as a service).
  compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || need+=(postgresql)
  # Container engine for the compose test (tests/deploy/test_compose_stack.py, docs/deploy.md
  # "Podman"): Debian's podman with runc (its default crun refuses hybrid cgroups hosts),
  # netavark + aardvark-dns so services find each other by name and iptables for their ports
  # (recommends, which --no-install-recommends below drops), mmdebstrap for the base image.
  # podman-compose comes from PyPI (the dev extra): Debian's 1.0.3 ignores name: and profiles:.
  for pkg in podman runc netavark aardvark-dns iptables mmdebstrap; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
  done
  if ((${#need[@]})); then
    sudo=""
    [[ $(id -u) == 0 ]] || sudo="sudo"
    # Packages dpkg does not have yet: only their services are ours to disable below.
    fresh=()
    for pkg in "${need[@]}"; do
      dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || fresh+=("$pkg")
    done
    echo "setup: installing Debian packages: ${need[*]}"
    $sudo apt-get update -qq
    # The packages would start system services (a prometheus on :9090, an nginx on :80);
    # the project runs its own instances on ports of its own. So for this install only,
    # Debian's policy-rc.d hook (exit 101 = "do not start") keeps them from starting; one
    # that is already there (e.g. a container's) is left as it is.
    policy=/usr/sbin/policy-rc.d
    added_policy=0
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\n# added by digits-server scripts/setup.sh during apt-get install\nexit 101\n' |
        $sudo tee "$policy" >/dev/null
      $sudo chmod 755 "$policy"
      added_policy=1
    fi
    status=0
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || status=$?
    if [[ $added_policy == 1 ]]; then
      $sudo rm -f "$policy"
    fi
    ((status == 0)) || exit "$status"
    # Under systemd the packages also enable their units for the next boot. Disable only
    # the services of the packages installed just now (a prometheus or nginx that was
    # there before is the user's own and is never touched), and never kill by name.
    if ((${#fresh[@]})) && [[ -d /run/systemd/system ]]; then
      $sudo systemctl disable --now "${fresh[@]}" >/dev/null 2>&1 || true
    fi
  fi
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
spec="."
if ((${#extras[@]})); then
  spec=".[$(IFS=,; echo "${extras[*]}")]"
fi
echo "setup: pip install -e $spec"
.venv/bin/python -m pip install -q -e "$spec"
echo "setup: done (.venv ready)"
