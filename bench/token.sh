#!/usr/bin/env bash
# token.sh — client-credentials token issuance over TLS, measured with wrk
# against baselines on the same node in the same run.
#
# Starts one `gatehouse serve` (SQLite, its own CA) on 127.0.0.1, then runs
# wrk, ROUNDS times round-robin, against:
#   healthz      GET /healthz — the TLS + HTTP + middleware floor of this node
#   discovery    GET /adfs/.well-known/openid-configuration — a small JSON document
#   token        POST /{tenant}/oauth2/v2.0/token, client_credentials with the
#                bootstrap principal's secret, scope as the Go SDK sends it —
#                every request verifies the secret and signs a new ES256 token
#   token-rs256  the same on a second node started with --signing-alg RS256
#                (only with RS256=1; RSA signing is ~20x slower)
# and prints req/s, p50/p99, the server's CPU µs per request and each target's
# ratio to healthz in the same round. Any non-2xx answer fails the run.
#
# Env (defaults): DURATION=10 CONNS=64 THREADS=2 ROUNDS=3 PORT=18443 RS256=0
#   GATEHOUSE_BIN  a prebuilt binary (else ./cmd/gatehouse is built)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18443}
RS256=${RS256:-0}
for t in wrk curl python3; do command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 2; }; done

WORK=$(mktemp -d -t gatehouse-bench.XXXXXX)
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

BIN=${GATEHOUSE_BIN:-}
if [ -z "$BIN" ]; then
  (cd "$ROOT" && go build -o "$WORK/gatehouse" ./cmd/gatehouse)
  BIN=$WORK/gatehouse
fi

# start NAME PORT [serve flags...]: start a node, wait until it answers.
start() {
  local name=$1 port=$2; shift 2
  "$BIN" serve --data-dir "$WORK/$name" --listen "127.0.0.1:$port" --host "localhost:$port" \
    --msi-listen 127.0.0.1:0 --bootstrap-file "$WORK/$name.json" --log-level warn "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  eval "PID_$name=$!"
  for _ in $(seq 100); do
    [ -s "$WORK/$name.json" ] && curl -sf --cacert "$WORK/$name/ca.pem" "https://localhost:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "node $name did not start:" >&2; cat "$WORK/$name.log" >&2; exit 1
}
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# lua NAME FILE: a wrk script posting a client-credentials request.
lua() {
  local boot=$1 out=$2
  local body
  body=$(python3 - "$boot" <<'PY'
import json, sys, urllib.parse
b = json.load(open(sys.argv[1]))
print(urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": b["clientId"],
  "client_secret": b["clientSecret"], "scope": "https://management.azure.com/.default openid offline_access profile",
  "client_info": "1"}))
PY
)
  cat >"$out" <<LUA
wrk.method = "POST"
wrk.body = "$body"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
LUA
}

start es "$PORT"
TENANT=$(field "$WORK/es.json" tenantId)
lua "$WORK/es.json" "$WORK/token.lua"
TARGETS=(healthz discovery token)
declare -A URL SCRIPT NODE
URL[healthz]="https://localhost:$PORT/healthz"; SCRIPT[healthz]=""; NODE[healthz]=es
URL[discovery]="https://localhost:$PORT/adfs/.well-known/openid-configuration"; SCRIPT[discovery]=""; NODE[discovery]=es
URL[token]="https://localhost:$PORT/$TENANT/oauth2/v2.0/token"; SCRIPT[token]="$WORK/token.lua"; NODE[token]=es
if [ "$RS256" = 1 ]; then
  start rs "$((PORT + 1))" --signing-alg RS256
  lua "$WORK/rs.json" "$WORK/token-rs.lua"
  TARGETS+=(token-rs256)
  URL[token-rs256]="https://localhost:$((PORT + 1))/$(field "$WORK/rs.json" tenantId)/oauth2/v2.0/token"
  SCRIPT[token-rs256]="$WORK/token-rs.lua"; NODE[token-rs256]=rs
fi

cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

# run TARGET: one wrk run; prints "rps p50 p99 cpu_us".
run() {
  local t=$1 pid args=() out before after
  pid=$(eval echo "\$PID_${NODE[$t]}")
  [ -n "${SCRIPT[$t]}" ] && args=(-s "${SCRIPT[$t]}")
  before=$(cputicks "$pid")
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "${args[@]}" "${URL[$t]}")
  after=$(cputicks "$pid")
  if grep -q "Non-2xx" <<<"$out"; then echo "$t: non-2xx answers:" >&2; echo "$out" >&2; exit 1; fi
  python3 - "$before" "$after" "$TCK" <<PY
import re, sys
out = """$out"""
b, a, tck = map(float, sys.argv[1:4])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
def ms(p):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % p, out, re.M)
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
cpu = (a - b) / tck / total * 1e6
print(f"{rps:.0f} {ms(50):.2f} {ms(99):.2f} {cpu:.0f}")
PY
}

# Warm-up (unmeasured).
for t in "${TARGETS[@]}"; do DURATION=2 run "$t" >/dev/null; done
printf "%-12s %5s %10s %9s %9s %10s %8s\n" target round "req/s" "p50 ms" "p99 ms" "cpu µs/req" "ratio"
declare -A SUM
for r in $(seq "$ROUNDS"); do
  declare -A RES=()
  for t in "${TARGETS[@]}"; do RES[$t]=$(run "$t"); done
  base=$(cut -d' ' -f1 <<<"${RES[healthz]}")
  for t in "${TARGETS[@]}"; do
    read -r rps p50 p99 cpu <<<"${RES[$t]}"
    printf "%-12s %5s %10s %9s %9s %10s %8.2f\n" "$t" "$r" "$rps" "$p50" "$p99" "$cpu" "$(python3 -c "print($rps/$base)")"
    SUM[$t]=$(( ${SUM[$t]:-0} + rps ))
  done
done
echo
for t in "${TARGETS[@]}"; do
  printf "%-12s mean %8d req/s  (%.2f of healthz)\n" "$t" $(( SUM[$t] / ROUNDS )) "$(python3 -c "print(${SUM[$t]}/${SUM[healthz]})")"
done
