#!/usr/bin/env bash
# N coderapi nodes on one PostgreSQL and one Redis, behind nginx: one deployment, locally.
#
#   scripts/cluster.sh [NODES]          (or `make cluster NODES=3`)
#
# Environment:
#   CODER_PG_CONNECTION_URL        the shared database (default: database coderapi_cluster on the server of
#                                  CODERAPI_TEST_PG_URL, postgresql://postgres@127.0.0.1:5432/test; created when missing)
#   CODERAPI_RATE_LIMIT_REDIS_URL  the shared rate-limit counters (default: redis://127.0.0.1:6379/0)
#   CLUSTER_PORT                   nginx's port (default 8080); node i listens on CLUSTER_NODE_PORT + i
#   CLUSTER_NODE_PORT              first node port (default 3100)
#   CLUSTER_DIR                    where configs, logs and pid files go (default: a new temporary directory)
#   CODERAPI_WORKERS               gunicorn workers per node (default 2)
#
# Prints "cluster ready: http://127.0.0.1:<port>" once every node and nginx answer /healthz, then runs
# until interrupted (SIGINT/SIGTERM), stopping everything it started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODES="${1:-${NODES:-2}}"
CLUSTER_PORT="${CLUSTER_PORT:-8080}"
CLUSTER_NODE_PORT="${CLUSTER_NODE_PORT:-3100}"
export CODERAPI_WORKERS="${CODERAPI_WORKERS:-2}"
export CODERAPI_RATE_LIMIT_REDIS_URL="${CODERAPI_RATE_LIMIT_REDIS_URL:-redis://127.0.0.1:6379/0}"
CODERAPI="${CODERAPI:-$ROOT/.venv/bin/coderapi}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"

if ! [[ "$NODES" =~ ^[1-9][0-9]*$ ]]; then
    echo "cluster: NODES must be a positive number, got '$NODES'" >&2
    exit 2
fi

if [[ -z "${CODER_PG_CONNECTION_URL:-}" ]]; then
    CODER_PG_CONNECTION_URL="$("$PYTHON" -m coderapi.testing database coderapi_cluster)"
    export CODER_PG_CONNECTION_URL
fi

DIR="${CLUSTER_DIR:-$(mktemp -d -t coderapi-cluster.XXXXXX)}"
mkdir -p "$DIR/tmp"
PIDS=()

stop() {
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    echo "cluster: stopped (logs in $DIR)" >&2
}
trap stop EXIT
trap 'exit 0' INT TERM

wait_healthy() {
    if ! "$PYTHON" -m coderapi.testing wait "$1" 30 2>/dev/null; then
        echo "cluster: $1 did not become healthy; see $DIR/*.log" >&2
        exit 1
    fi
}

"$CODERAPI" db migrate >"$DIR/migrate.log" 2>&1 || { cat "$DIR/migrate.log" >&2; exit 1; }

upstreams=""
for ((i = 0; i < NODES; i++)); do
    port=$((CLUSTER_NODE_PORT + i))
    mkdir -p "$DIR/node$i"
    CODERAPI_DATA_DIR="$DIR/node$i" "$CODERAPI" server \
        --http-address "127.0.0.1:$port" \
        --proxy-trusted-origins 127.0.0.1/32 \
        --proxy-trusted-headers X-Forwarded-For \
        --log-human "$DIR/node$i.log" \
        --log-json "$DIR/node$i.json" \
        >>"$DIR/node$i.log" 2>&1 &
    PIDS+=("$!")
    upstreams+="    server 127.0.0.1:$port max_fails=3 fail_timeout=10s;\n"
done

# The repository's nginx files with this cluster's ports between the markers.
cp "$ROOT/deploy/nginx/nginx.conf" "$DIR/nginx.conf"
awk -v nodes="$upstreams" -v listen="    listen 127.0.0.1:$CLUSTER_PORT;\n" '
    /# BEGIN nodes/ { print; printf "%s", nodes; skip = 1; next }
    /# BEGIN listen/ { print; printf "%s", listen; skip = 1; next }
    /# END / { skip = 0 }
    !skip { print }
' "$ROOT/deploy/nginx/coderapi.conf" >"$DIR/coderapi.conf"
"$NGINX" -p "$DIR" -c nginx.conf -e stderr -g 'daemon off;' >>"$DIR/nginx.log" 2>&1 &
PIDS+=("$!")

for ((i = 0; i < NODES; i++)); do
    wait_healthy "http://127.0.0.1:$((CLUSTER_NODE_PORT + i))/healthz"
done
wait_healthy "http://127.0.0.1:$CLUSTER_PORT/healthz"
echo "cluster ready: http://127.0.0.1:$CLUSTER_PORT ($NODES nodes, logs in $DIR)"

# Run until a signal or until any child dies.
wait -n "${PIDS[@]}" || true
echo "cluster: a process exited; stopping" >&2
exit 1
