#!/usr/bin/env bash
# gateway.sh — the AI data plane under load: the upstream directly, and the
# gateway in front of it with each credential kind, in one interleaved run.
#
# Starts on 127.0.0.1 only:
#   upstream     bench/upstream (Go net/http, a fixed chat completion) on UPSTREAM_PORT,
#                plus a TLS 1.3 listener on UPSTREAM_TLS_PORT in the same process
#   gatehouse    `gatehouse serve` (SQLite, its own CA) on PORT; bench/gateway-prepare
#                creates, through the public APIs, an OpenAI account with a deployment
#                "chat" forwarding to the upstream, and gets a key, an STS token for it
#                and an identity token (a principal with Cognitive Services OpenAI User)
# then runs wrk, ROUNDS times round-robin (so drift is shared), against:
#   upstream        POST /v1/chat/completions on the upstream, plain HTTP (the physical limit)
#   upstream-tls    the same over TLS 1.3 (a TLS Go server that does nothing else)
#   gw-key          POST /ai/bench/openai/deployments/chat/chat/completions  Ocp-Apim-Subscription-Key
#   gw-sts          the same with Authorization: Bearer <STS token>
#   gw-identity     the same with Authorization: Bearer <identity token>
#   gw-key-padded   gw-key plus a dummy header as long as the STS token: the control that
#                   separates the cost of carrying a ~750-byte bearer header from the token check
#   gw-key-h2       only when named in TARGETS: gw-key over HTTP/2 (what the Go SDKs and openai-go
#                   negotiate), driven by h2load (Debian nghttp2-client) with one stream per
#                   connection; h2load reports no percentiles, so p50/p99 print as "-"
#   floor           only when named in TARGETS: bench/floor (the least a Go key-checking TLS
#                   proxy does) in front of the same upstream with the same key, on FLOOR_PORT
#                   (default PORT+2) — how far the gateway is from Go's floor in the same run,
#                   e.g. TARGETS="upstream-tls floor gw-key"
#   upstream-rt, gw-rt
#                   only when named in TARGETS: the Realtime API — bench/realtime keeps CONNS
#                   WebSockets sending a 100 ms audio event (6.4 KB of JSON) and waiting for
#                   its echo, straight to the upstream (ws://…/v1/realtime) and through the
#                   gateway (wss://…/ai/bench/openai/v1/realtime?model=chat, the key in
#                   api-key); req/s is round trips a second, CPU per round trip,
#                   e.g. TARGETS="upstream-rt gw-rt"
#   base-key, base-sts, base-identity, base-key-h2
#                   only with BASE_BIN: the same requests (base-key-h2: over HTTP/2, only when
#                   named in TARGETS) to a second node running
#                   another build (say, the previous commit's) on a copy of the prepared data,
#                   so a change is measured before/after in one interleaved run
# and prints req/s, p50/p99, CPU µs and context switches per request of the measured process
# (the upstream's own for upstream*, the gateway's — excluding the
# upstream — for gw-*), the ratio to upstream in the same round, and for
# the token paths the ratio to gw-key. Any non-2xx answer fails the run.
#
# Env (defaults): DURATION=10 CONNS=64 THREADS=2 ROUNDS=3 WARMUP=2
#   PORT=18490 UPSTREAM_PORT=18480 UPSTREAM_TLS_PORT=18481 (apart from the ports of
#   bench/token.sh and ../shared/bench/dataplane.sh, so runs do not collide)
#   GATEHOUSE_BIN  a prebuilt binary (else ./cmd/gatehouse is built)
#   BASE_BIN       a second gatehouse binary to compare with (targets base-*), served on
#                  BASE_PORT (default PORT+1)
#   GW_ENV, BASE_ENV  extra environment of the gw-* and base-* nodes ("GOGC=off GOMAXPROCS=1";
#                  GW_ENV also of the node --dataplane starts):
#                  compares runtime settings with one binary (BASE_BIN=GATEHOUSE_BIN)
#   TARGETS        the targets to measure, in order (default: all of the above that apply)
#   POSTGRES       a PostgreSQL DSN whose server this script may create a database on: the
#                  nodes then share a fresh database (made here, dropped at the end) instead of
#                  SQLite, so GW_ENV/BASE_ENV="GATEHOUSE_WORKERS=2" can run a node as workers
#                  (serve --workers); one build as one process against two workers:
#                  GATEHOUSE_BIN=b BASE_BIN=b POSTGRES=postgres://postgres@127.0.0.1:5432/postgres
#                  GW_ENV=GATEHOUSE_WORKERS=2 TARGETS="upstream gw-key base-key" bench/gateway.sh
#                  (with --dataplane, ../shared/bench runs in the host network namespace,
#                  where PostgreSQL is)
#   KEEP=1         keep the node running and print its environment instead of
#                  benchmarking (for ../shared/bench/dataplane.sh, see below)
#
# The side-by-side figure with nginx, haproxy and caddy uses the shared
# script with the gateway as its target:
#   bench/gateway.sh --dataplane     (runs ../shared/bench/dataplane.sh with TARGET_*
#                                     set to a prepared gateway; its env knobs apply)
# Instructions per request, counted rather than timed (repeatable on a noisy
# machine), for the node, BASE_BIN's node and nginx-TLS, by valgrind:
#   bench/gateway.sh --instructions  (bench/instructions.sh: its env knobs apply)
# The profile Go builds the binary with (profile-guided optimization):
#   bench/gateway.sh --pgo   loads a node started with --cpu-profile with the
#                            data plane's mix (key, STS token, identity token;
#                            HTTP/1.1, and HTTP/2 when h2load is here) for
#                            PGO_SECONDS (default 40) in all, stops it and
#                            writes its profile to cmd/gatehouse/default.pgo
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
PORT=${PORT:-18490}
UPSTREAM_PORT=${UPSTREAM_PORT:-18480}
UPSTREAM_TLS_PORT=${UPSTREAM_TLS_PORT:-18481}
BASE_BIN=${BASE_BIN:-}
BASE_PORT=${BASE_PORT:-$((PORT + 1))}
FLOOR_PORT=${FLOOR_PORT:-$((PORT + 2))}
MODE=${1:-}
for t in wrk curl python3 go; do command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 2; }; done
ports=("$PORT" "$UPSTREAM_PORT" "$UPSTREAM_TLS_PORT")
[ -z "$BASE_BIN" ] || ports+=("$BASE_PORT")
case " ${TARGETS:-} " in *" floor "*) WANT_FLOOR=1; ports+=("$FLOOR_PORT");; *) WANT_FLOOR=;; esac
case " ${ITARGETS:-} " in *" floor "*) [ "$MODE" != --instructions ] || WANT_FLOOR=1;; esac
for p in "${ports[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "port $p is in use (set PORT, UPSTREAM_PORT, UPSTREAM_TLS_PORT)" >&2; exit 2; fi
done

WORK=$(mktemp -d -t gatehouse-gwbench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
PGDB=
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -z "$PGDB" ] || psql "$POSTGRES" -qc "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

BIN=${GATEHOUSE_BIN:-}
(cd "$ROOT" && {
  [ -n "$BIN" ] || go build -o "$WORK/gatehouse" ./cmd/gatehouse
  go build -o "$WORK/upstream" ./bench/upstream
  go build -o "$WORK/prepare" ./bench/gateway-prepare
  go build -o "$WORK/rtload" ./bench/realtime
  [ -z "$WANT_FLOOR" ] || go build -o "$WORK/floor" ./bench/floor
})
BIN=${BIN:-$WORK/gatehouse}

wait_url() { # wait_url URL [curl args...]
  local url=$1; shift
  for _ in $(seq 150); do curl -sf -o /dev/null "$@" "$url" && return 0; sleep 0.2; done
  echo "nothing answers at $url" >&2; return 1
}

serve_args=(serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" --host "localhost:$PORT"
  --msi-listen 127.0.0.1:0 --bootstrap-file "$WORK/bootstrap.json" --log-level warn)
base_store=()
if [ -n "${POSTGRES:-}" ]; then
  command -v psql >/dev/null || { echo "POSTGRES needs psql" >&2; exit 2; }
  PGDB=gh_bench_$$
  psql "$POSTGRES" -qc "CREATE DATABASE $PGDB" >/dev/null
  PG_DSN=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$POSTGRES" "$PGDB")
  serve_args+=(--postgres "$PG_DSN")
  # The baseline node is another node of the cluster: worker 0's key.
  base_store=(--postgres "$PG_DSN" --master-key-file "$WORK/data/master.key")
  export NETNS=0
fi

# Prepare on a node of its own, then stop it: the benchmarked node (or the
# one dataplane.sh starts) opens the same data directory.
"$BIN" "${serve_args[@]}" >"$WORK/prepare-node.log" 2>&1 &
PREP_PID=$!
PIDS+=("$PREP_PID")
wait_url "https://localhost:$PORT/healthz" --cacert "$WORK/data/ca.pem" || { cat "$WORK/prepare-node.log" >&2; exit 1; }
for _ in $(seq 50); do [ -s "$WORK/bootstrap.json" ] && break; sleep 0.1; done
"$WORK/prepare" -bootstrap "$WORK/bootstrap.json" -upstream "http://127.0.0.1:$UPSTREAM_PORT" -out "$WORK/creds.env"
kill -TERM "$PREP_PID"; wait "$PREP_PID" 2>/dev/null || true
# The baseline node serves a copy of the prepared data (the same keys,
# signing keys and CA) under the same public host, on a port of its own.
[ -z "$BASE_BIN" ] || cp -a "$WORK/data" "$WORK/data-base"
# shellcheck disable=SC1091
. "$WORK/creds.env"

BODY='{"model":"stub","messages":[{"role":"user","content":"hi"}],"max_tokens":1}'
if [ "$MODE" = "--instructions" ]; then
  # shellcheck source=bench/instructions.sh
  . "$HERE/instructions.sh"
  exit 0
fi
if [ "$MODE" = "--dataplane" ]; then
  SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
  [ -x "$SHARED/dataplane.sh" ] || { echo "no $SHARED/dataplane.sh (set SHARED_BENCH)" >&2; exit 2; }
  echo "gateway prepared: account bench, deployment chat → 127.0.0.1:$UPSTREAM_PORT" >&2
  TARGET_NAME=gatehouse TARGET_CMD="env ${GW_ENV:-} $BIN ${serve_args[*]}" TARGET_URL="$CHAT_URL" \
    TARGET_HEADER="Ocp-Apim-Subscription-Key: $KEY" UPSTREAM_PORT=$UPSTREAM_PORT UPSTREAM_BIN="$WORK/upstream" \
    UPSTREAM_TLS_PORT=$UPSTREAM_TLS_PORT "$SHARED/dataplane.sh"
  exit $?
fi

"$WORK/upstream" -addr "127.0.0.1:$UPSTREAM_PORT" -tls-addr "127.0.0.1:$UPSTREAM_TLS_PORT" >"$WORK/upstream.log" 2>&1 &
UP_PID=$!
PIDS+=("$UP_PID")
node_args=()
[ "$MODE" != --pgo ] || node_args=(--cpu-profile "$WORK/node.pprof")
# shellcheck disable=SC2086
env ${GW_ENV:-} "$BIN" "${serve_args[@]}" "${node_args[@]}" >"$WORK/node.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
if [ -n "$BASE_BIN" ]; then
  # shellcheck disable=SC2086
  env ${BASE_ENV:-} "$BASE_BIN" serve --data-dir "$WORK/data-base" --listen "127.0.0.1:$BASE_PORT" --host "localhost:$PORT" \
    --msi-listen 127.0.0.1:0 --log-level warn "${base_store[@]}" >"$WORK/base-node.log" 2>&1 &
  BASE_PID=$!
  PIDS+=("$BASE_PID")
fi
if [ -n "$WANT_FLOOR" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -keyout "$WORK/floor-key.pem" -out "$WORK/floor-cert.pem" >/dev/null 2>&1
  KEY1=$KEY KEY2=$KEY "$WORK/floor" -cert "$WORK/floor-cert.pem" -key "$WORK/floor-key.pem" \
    -addr "127.0.0.1:$FLOOR_PORT" -upstream "127.0.0.1:$UPSTREAM_PORT" >"$WORK/floor.log" 2>&1 &
  FLOOR_PID=$!
  PIDS+=("$FLOOR_PID")
fi
wait_url "http://127.0.0.1:$UPSTREAM_PORT/" || { cat "$WORK/upstream.log" >&2; exit 1; }
if [ -n "$WANT_FLOOR" ]; then # it answers 401 without the key: wait for the port
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$FLOOR_PORT") 2>/dev/null && break; sleep 0.1; done
fi
wait_url "https://localhost:$PORT/healthz" --cacert "$WORK/data/ca.pem" || { cat "$WORK/node.log" >&2; exit 1; }
if [ -n "$BASE_BIN" ]; then
  wait_url "https://localhost:$BASE_PORT/healthz" --cacert "$WORK/data/ca.pem" || { cat "$WORK/base-node.log" >&2; exit 1; }
fi

if [ "${KEEP:-}" = 1 ]; then
  echo "gatehouse pid $GW_PID on https://localhost:$PORT (CA $WORK/data/ca.pem); upstream pid $UP_PID"
  cat "$WORK/creds.env"
  echo "Ctrl-C stops both."
  wait "$GW_PID"
  exit 0
fi

printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' \
  "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$BODY")" >"$WORK/post.lua"

if [ "$MODE" = --pgo ]; then
  # Half the time on the key, a sixth on each of the others (h2: the key
  # over HTTP/2, what Go SDK clients negotiate).
  secs=${PGO_SECONDS:-40}
  loads=("Ocp-Apim-Subscription-Key: $KEY" "Ocp-Apim-Subscription-Key: $KEY" "Ocp-Apim-Subscription-Key: $KEY"
    "Authorization: Bearer $STS" "Authorization: Bearer $IDENTITY")
  command -v h2load >/dev/null && loads+=(h2) || loads+=("Ocp-Apim-Subscription-Key: $KEY")
  printf '%s' "$BODY" >"$WORK/body.json"
  for h in "${loads[@]}"; do
    s=$((secs / ${#loads[@]}))
    if [ "$h" = h2 ]; then
      h2load -t"$THREADS" -c"$CONNS" -m1 -D "$s" -d "$WORK/body.json" -H "Content-Type: application/json" \
        -H "Ocp-Apim-Subscription-Key: $KEY" "$CHAT_URL" >/dev/null
    else
      wrk -t"$THREADS" -c"$CONNS" -d"${s}s" --timeout 5s -s "$WORK/post.lua" -H "$h" "$CHAT_URL" >/dev/null
    fi
  done
  kill -TERM "$GW_PID"; wait "$GW_PID" 2>/dev/null || true
  [ -s "$WORK/node.pprof" ] || { echo "the node wrote no profile" >&2; cat "$WORK/node.log" >&2; exit 1; }
  cp "$WORK/node.pprof" "$ROOT/cmd/gatehouse/default.pgo"
  echo "wrote cmd/gatehouse/default.pgo ($(wc -c <"$ROOT/cmd/gatehouse/default.pgo") bytes); rebuild to use it" >&2
  exit 0
fi

if [ -n "${TARGETS:-}" ]; then
  read -r -a TARGETS <<<"$TARGETS"
else
  TARGETS=(upstream upstream-tls gw-key gw-sts gw-identity gw-key-padded)
  [ -z "$BASE_BIN" ] || TARGETS+=(base-key base-sts base-identity)
fi
declare -A URL HDR HDR2 PID
URL[upstream]="http://127.0.0.1:$UPSTREAM_PORT/v1/chat/completions"; HDR[upstream]="X-Bench: 1"; PID[upstream]=$UP_PID
URL[upstream-tls]="https://127.0.0.1:$UPSTREAM_TLS_PORT/v1/chat/completions"; HDR[upstream-tls]="X-Bench: 1"; PID[upstream-tls]=$UP_PID
URL[gw-key]=$CHAT_URL; HDR[gw-key]="Ocp-Apim-Subscription-Key: $KEY"; PID[gw-key]=$GW_PID
URL[gw-sts]=$CHAT_URL; HDR[gw-sts]="Authorization: Bearer $STS"; PID[gw-sts]=$GW_PID
URL[gw-identity]=$CHAT_URL; HDR[gw-identity]="Authorization: Bearer $IDENTITY"; PID[gw-identity]=$GW_PID
URL[gw-key-h2]=$CHAT_URL; HDR[gw-key-h2]="Ocp-Apim-Subscription-Key: $KEY"; PID[gw-key-h2]=$GW_PID
URL[gw-key-padded]=$CHAT_URL; HDR[gw-key-padded]="Ocp-Apim-Subscription-Key: $KEY"; PID[gw-key-padded]=$GW_PID
BASE_URL=${CHAT_URL/localhost:$PORT/localhost:$BASE_PORT}
URL[base-key]=$BASE_URL; HDR[base-key]=${HDR[gw-key]}; PID[base-key]=${BASE_PID:-}
URL[base-sts]=$BASE_URL; HDR[base-sts]=${HDR[gw-sts]}; PID[base-sts]=${BASE_PID:-}
URL[base-identity]=$BASE_URL; HDR[base-identity]=${HDR[gw-identity]}; PID[base-identity]=${BASE_PID:-}
URL[base-key-h2]=$BASE_URL; HDR[base-key-h2]=${HDR[gw-key]}; PID[base-key-h2]=${BASE_PID:-}
URL[floor]="https://127.0.0.1:$FLOOR_PORT/v1/chat/completions"; HDR[floor]="Ocp-Apim-Subscription-Key: $KEY"; PID[floor]=${FLOOR_PID:-}
HDR2[gw-key-padded]="X-Pad: $(python3 -c "print('x' * ${#STS})")"
URL[upstream-rt]="ws://127.0.0.1:$UPSTREAM_PORT/v1/realtime?model=stub"; HDR[upstream-rt]="X-Bench: 1"; PID[upstream-rt]=$UP_PID
URL[gw-rt]="wss://${CHAT_URL#https://}"; URL[gw-rt]="${URL[gw-rt]%%/openai/*}/openai/v1/realtime?model=chat"
HDR[gw-rt]="api-key: $KEY"; PID[gw-rt]=$GW_PID

# Each credential must work before anything is measured.
for t in "${TARGETS[@]}"; do
  [ -n "${URL[$t]:-}" ] && [ -n "${PID[$t]:-}" ] || { echo "unknown target $t (base-* need BASE_BIN)" >&2; exit 2; }
  case $t in *-rt) continue;; esac # bench/realtime fails the run itself
  code=$(curl -sk -o "$WORK/check.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' -H "${HDR[$t]}" -H "${HDR2[$t]:-X-Bench: 1}" \
    --data "$BODY" "${URL[$t]}")
  [ "$code" = 200 ] || { echo "$t: status $code: $(head -c 300 "$WORK/check.out")" >&2; exit 1; }
done
code=$(curl -sk -o /dev/null -w '%{http_code}' -X POST --data "$BODY" "$CHAT_URL")
[ "$code" = 401 ] || { echo "no credential: status $code, want 401" >&2; exit 1; }

# cputicks/systicks PID: CPU ticks of PID and its children (a node's workers).
# A worker restarted during a run would lose its ticks; the run fails
# then anyway (its connections are reset).
procs() { echo "$1" $(pgrep -P "$1" || true); }
cputicks() { local p; for p in $(procs "$1"); do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{s += $1} END {print s}'; }
systicks() { local p; for p in $(procs "$1"); do awk '{print $15}' "/proc/$p/stat"; done | awk '{s += $1} END {print s}'; }
# ctxsw PID: the context switches of the threads of PID and its children so
# far (voluntary and not): a Go process's hand-offs between threads show
# here (internal/rawconn).
ctxsw() { local p; for p in $(procs "$1"); do cat /proc/"$p"/task/*/status 2>/dev/null; done | awk '/ctxt_switches/ {s += $2} END {print s + 0}'; }
TCK=$(getconf CLK_TCK)

# run TARGET SECONDS: one wrk run (h2load for *-h2, bench/realtime for *-rt); appends
# "target rps p50 p99 cpu_us cs" to $WORK/round (cs: context switches per request).
run() {
  local t=$1 secs=$2 before after sysb sysa csb csa out
  case $t in *-h2) run_h2 "$@"; return;; *-rt) run_rt "$@"; return;; esac
  before=$(cputicks "${PID[$t]}") sysb=$(systicks "${PID[$t]}") csb=$(ctxsw "${PID[$t]}")
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --latency --timeout 5s -s "$WORK/post.lua" -H "${HDR[$t]}" \
    -H "${HDR2[$t]:-X-Bench: 1}" "${URL[$t]}")
  after=$(cputicks "${PID[$t]}") sysa=$(systicks "${PID[$t]}") csa=$(ctxsw "${PID[$t]}")
  if grep -qE "Non-2xx|Socket errors" <<<"$out"; then echo "$t: errors:" >&2; echo "$out" >&2; exit 1; fi
  python3 - "$t" "$before" "$after" "$TCK" "$csb" "$csa" "$sysb" "$sysa" >>"$WORK/round" <<PY
import re, sys
out = """$out"""
t, (b, a, tck, csb, csa, sb, sa) = sys.argv[1], map(float, sys.argv[2:9])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
def ms(p):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % p, out, re.M)
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
print(t, f"{rps:.0f}", f"{ms(50):.3f}", f"{ms(99):.3f}", f"{(a - b) / tck / total * 1e6:.1f}", f"{(csa - csb) / total:.3f}", f"{(sa - sb) / tck / total * 1e6:.1f}")
PY
}

# run_h2 TARGET SECONDS: run's HTTP/2 twin, with h2load (no percentiles: "nan").
run_h2() {
  local t=$1 secs=$2 before after sysb sysa csb csa out
  command -v h2load >/dev/null || { echo "$t needs h2load (apt-get install nghttp2-client)" >&2; exit 2; }
  printf '%s' "$BODY" >"$WORK/body.json"
  before=$(cputicks "${PID[$t]}") sysb=$(systicks "${PID[$t]}") csb=$(ctxsw "${PID[$t]}")
  out=$(h2load -t"$THREADS" -c"$CONNS" -m1 -D "$secs" -d "$WORK/body.json" -H "Content-Type: application/json" \
    -H "${HDR[$t]}" "${URL[$t]}" 2>&1)
  after=$(cputicks "${PID[$t]}") sysa=$(systicks "${PID[$t]}") csa=$(ctxsw "${PID[$t]}")
  python3 - "$t" "$before" "$after" "$TCK" "$csb" "$csa" "$sysb" "$sysa" >>"$WORK/round" <<PY
import re, sys
out = """$out"""
t, (b, a, tck, csb, csa, sb, sa) = sys.argv[1], map(float, sys.argv[2:9])
m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
if not m or not codes or int(m.group(4)) or int(m.group(5)) or sum(map(int, codes.groups()[1:])):
    sys.exit(t + ": errors:\n" + out)
rps = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1))
done = int(m.group(3))
print(t, f"{rps:.0f}", "nan", "nan", f"{(a - b) / tck / done * 1e6:.1f}", f"{(csa - csb) / done:.3f}", f"{(sa - sb) / tck / done * 1e6:.1f}")
PY
}

# run_rt TARGET SECONDS: run's Realtime twin: CONNS WebSocket sessions of bench/realtime.
run_rt() {
  local t=$1 secs=$2 before after sysb sysa csb csa out
  before=$(cputicks "${PID[$t]}") sysb=$(systicks "${PID[$t]}") csb=$(ctxsw "${PID[$t]}")
  out=$("$WORK/rtload" -url "${URL[$t]}" -header "${HDR[$t]}" -cacert "$WORK/data/ca.pem" -sessions "$CONNS" -duration "${secs}s") ||
    { echo "$t: failed" >&2; exit 1; }
  after=$(cputicks "${PID[$t]}") sysa=$(systicks "${PID[$t]}") csa=$(ctxsw "${PID[$t]}")
  read -r rps p50 p99 total <<<"$out"
  python3 -c 'import sys; t, rps, p50, p99, total, b, a, tck, csb, csa, sb, sa = sys.argv[1:]; print(t, rps, p50, p99, f"{(float(a) - float(b)) / float(tck) / int(total) * 1e6:.1f}", f"{(int(csa) - int(csb)) / int(total):.3f}", f"{(float(sa) - float(sb)) / float(tck) / int(total) * 1e6:.1f}")' \
    "$t" "$rps" "$p50" "$p99" "$total" "$before" "$after" "$TCK" "$csb" "$csa" "$sysb" "$sysa" >>"$WORK/round"
}

for t in "${TARGETS[@]}"; do run "$t" "$WARMUP"; done
: >"$WORK/round"
: >"$WORK/all"
n=${#TARGETS[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  : >"$WORK/round"
  for ((i = 0; i < n; i++)); do run "${TARGETS[$(((i + r - 1) % n))]}" "$DURATION"; done
  sed "s/^/$r /" "$WORK/round" >>"$WORK/all"
  echo "round $r done" >&2
done

python3 - "$WORK/all" "$ROUNDS" "$CONNS" "$DURATION" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
rounds, conns, dur = sys.argv[2:5]
by = {}
for r, t, rps, p50, p99, cpu, cs, sy in rows:
    by.setdefault(t, {})[r] = (float(rps), float(p50), float(p99), float(cpu), float(cs), float(sy))
order = ["upstream", "upstream-tls", "floor", "gw-key", "gw-key-h2", "gw-sts", "gw-identity", "gw-key-padded", "base-key", "base-key-h2", "base-sts", "base-identity",
         "upstream-rt", "gw-rt"]
med = statistics.median
print(f"\n{rounds} round(s) x {dur}s, {conns} connections, wrk -t2; median (min-max) over rounds")
print(f"{'target':<13} {'req/s':<22} {'vs upstream':<20} {'vs *-key':<20} {'p50 ms':<8} {'p99 ms':<8} {'cpu µs/req':<10} {'sys µs':<7} {'cs/req':<6}")
for t in order:
    rs = by.get(t, {})
    if not rs:
        continue
    rps = [v[0] for v in rs.values()]
    up = "upstream-rt" if t.endswith("-rt") else "upstream"
    ratio = [rs[r][0] / by[up][r][0] for r in rs if r in by.get(up, {})]
    base = "base-key" if t.startswith("base-") else "gw-key"
    key = [rs[r][0] / by[base][r][0] for r in rs if r in by.get(base, {})] if t.startswith(("gw-", "base-")) and not t.endswith("-rt") else []
    fmt = lambda xs: f"{med(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})" if xs else "-"
    print(f"{t:<13} {f'{med(rps):.0f} ({min(rps):.0f}-{max(rps):.0f})':<22} {fmt(ratio):<20} {fmt(key):<20} "
          f"{med([v[1] for v in rs.values()]):<8.3f} {med([v[2] for v in rs.values()]):<8.3f} {med([v[3] for v in rs.values()]):<10.1f} {med([v[5] for v in rs.values()]):<7.1f} {med([v[4] for v in rs.values()]):<6.2f}"
          .replace("nan     ", "-       "))
print("\ncpu µs/req: upstream* = the upstream process; gw-*, base-*, floor = that proxy process alone (the upstream it calls is not counted).")
print("sys µs: the part of cpu µs/req spent in the kernel (system time).")
print("cs/req: that process's context switches (all its threads, voluntary and not) per request.")
if any(t.endswith("-rt") for t in by):
    print("*-rt: req/s = Realtime round trips a second (an event and its echo), cpu per round trip, vs upstream = vs upstream-rt.")
print("vs *-key: gw-* against gw-key, base-* against base-key.")
if "gw-key" in by and "floor" in by:
    rr = [by["gw-key"][r][0] / by["floor"][r][0] for r in by["gw-key"] if r in by["floor"]]
    print(f"gw-key / floor (req/s, same rounds): {med(rr):.3f} ({min(rr):.3f}-{max(rr):.3f})")
if "gw-key" in by and "base-key" in by:
    rr = [by["gw-key"][r][0] / by["base-key"][r][0] for r in by["gw-key"] if r in by["base-key"]]
    print(f"gw-key / base-key (req/s, same rounds): {med(rr):.3f} ({min(rr):.3f}-{max(rr):.3f})")
if "gw-key-h2" in by and "base-key-h2" in by:
    rr = [by["gw-key-h2"][r][0] / by["base-key-h2"][r][0] for r in by["gw-key-h2"] if r in by["base-key-h2"]]
    print(f"gw-key-h2 / base-key-h2 (req/s, same rounds): {med(rr):.3f} ({min(rr):.3f}-{max(rr):.3f})")
PY
