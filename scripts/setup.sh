#!/usr/bin/env bash
# Idempotent setup: system packages (optional), a virtualenv in .venv, and the
# project installed into it. Fast the second time: pip skips what is there.
#
#   scripts/setup.sh                 serving side + clients (no TensorFlow)
#   scripts/setup.sh --dev           + test tools and tritonclient
#   scripts/setup.sh --dev --train   + TensorFlow/Keras/tf2onnx for training
#   scripts/setup.sh --system        + Debian's prometheus, nginx, chromium (tests, local cluster)
set -euo pipefail
cd "$(dirname "$0")/.."

extras=()
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
  if ((${#need[@]})); then
    sudo=""
    [[ $(id -u) == 0 ]] || sudo="sudo"
    echo "setup: installing Debian packages: ${need[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # The packages start system services; the project runs its own instances.
    $sudo systemctl disable --now prometheus nginx >/dev/null 2>&1 || true
    $sudo pkill -x prometheus >/dev/null 2>&1 || true
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
