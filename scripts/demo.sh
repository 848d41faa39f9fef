#!/usr/bin/env bash
# The demo: set up, serve the shipped models, draw grid.png with the cnn, stop.
#
#   bash scripts/demo.sh                  # writes ./grid.png
#   bash scripts/demo.sh --keep-serving   # leave the server running afterwards
# On a terminal it keeps serving the web page until Ctrl-C; without one (a CI job,
# `ssh host bash scripts/demo.sh`) it says so and stops: use --keep-serving there.
#   DIGITS_GRPC_PORT=9001 DIGITS_METRICS_PORT=9002 bash scripts/demo.sh
#   DIGITS_MODEL_REPOSITORY=/path/to/models bash scripts/demo.sh
#
# Needs no TensorFlow: the models are already trained (model_repository/) and
# the client loads MNIST with numpy only. Ports: $DIGITS_GRPC_PORT and
# $DIGITS_METRICS_PORT when set, else 8001/8002 when free, else free ports.
set -euo pipefail
cd "$(dirname "$0")/.."

keep=0
out=grid.png
model=cnn
for arg in "$@"; do
  case "$arg" in
    --keep-serving) keep=1 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

bash scripts/setup.sh

repo=${DIGITS_MODEL_REPOSITORY:-model_repository}
if ! ls "$repo/$model"/*/model.onnx >/dev/null 2>&1; then
  echo "demo.sh: no trained '$model' model in $repo/ (train it with:" \
       "scripts/setup.sh --train && .venv/bin/digits-train --model $model)" >&2
  exit 1
fi

PY=.venv/bin/python
# A port given in the environment is used as is; otherwise the usual one if it
# is free, else 0 (the server picks a free port and prints it). "Free" is the
# server's own check (serving/sockets.py, SO_REUSEADDR as the server binds): a
# port that only has connections of a previous run in TIME-WAIT is free, so a
# rerun within a minute keeps the page on :8000.
pick_port() {
  local wanted=$1
  if "$PY" -c 'import sys; from serving.sockets import check_free; check_free("", "127.0.0.1", int(sys.argv[1]))' "$wanted" 2>/dev/null; then
    echo "$wanted"
  else
    echo 0
  fi
}
grpc_port=${DIGITS_GRPC_PORT:-$(pick_port 8001)}
http_port=${DIGITS_HTTP_PORT:-$(pick_port 8000)}
metrics_port=${DIGITS_METRICS_PORT:-$(pick_port 8002)}

log=$(mktemp -t digits-demo-server.XXXXXX.log)
server_pid=""
cleanup() {
  local status=$?
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    if [[ $keep == 1 && $status == 0 ]]; then
      return
    fi
    echo "demo: stopping the server (pid $server_pid)"
    kill -TERM "$server_pid" 2>/dev/null || true
    # The server drains in-flight requests on SIGTERM; don't wait forever.
    for _ in $(seq 1 150); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $status != 0 && -s $log ]]; then
    echo "demo: failed; the server log ($log) ends with:" >&2
    tail -n 20 "$log" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "demo: starting the server on the shipped models (log: $log)"
"$PY" -m serving --model-repository "$repo" \
  --grpc-host 127.0.0.1 --grpc-port "$grpc_port" \
  --http-host 127.0.0.1 --http-port "$http_port" \
  --metrics-host 127.0.0.1 --metrics-port "$metrics_port" >"$log" 2>&1 &
server_pid=$!

# The server prints "digits-serve ready grpc=N http=H metrics=M pid=P" once it
# has loaded the models; with port 0 that line is where the real ports are.
ready=""
for _ in $(seq 1 600); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "demo: the server exited during start-up" >&2
    exit 1
  fi
  ready=$(grep -o 'digits-serve ready grpc=.*' "$log" || true)
  [[ -n $ready ]] && break
  sleep 0.1
done
if [[ -z $ready ]]; then
  echo "demo: the server did not report ready within 60 s" >&2
  exit 1
fi
grpc_port=$(sed -E 's/.* grpc=([0-9]+).*/\1/' <<<"$ready")
metrics_port=$(sed -E 's/.* metrics=(-?[0-9]+).*/\1/' <<<"$ready")
http_port=$(sed -E 's/.* http=(-?[0-9]+).*/\1/' <<<"$ready")
address=127.0.0.1:$grpc_port

# Health SERVING for the model (grpc.health.v1) before the first request.
.venv/bin/digits-client health --server "$address" --model "$model" --wait 60
.venv/bin/digits-client grid --server "$address" --model "$model" --out "$out"
echo "demo: the grid is at $(pwd)/$out"

page=http://127.0.0.1:$http_port/
# The page and its REST endpoint answer before the URL is shown.
"$PY" - "$page" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
    assert r.status == 200 and b'data-testid="pad"' in r.read(), "page not served"
with urllib.request.urlopen(sys.argv[1] + "v1/models", timeout=10) as r:
    assert r.status == 200
PY
echo "demo: draw digits in your browser: $page  (REST: ${page}v2, API docs: ${page}docs)"

if [[ $keep == 1 ]]; then
  echo "demo: server still running: pid $server_pid, gRPC $address, HTTP $page," \
       "metrics http://127.0.0.1:$metrics_port/metrics (stop it with: kill $server_pid)"
elif [[ -t 0 ]]; then
  echo "demo: serving until Ctrl-C"
  wait "$server_pid" || true
else
  echo "demo: no terminal on stdin, so nobody could press Ctrl-C: stopping the server now." \
       "Run 'bash scripts/demo.sh --keep-serving' to leave it running in the background."
fi
