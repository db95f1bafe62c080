# instructions.sh — sourced by gateway.sh --instructions after it has
# prepared the data (WORK, BIN, BASE_BIN, KEY, CHAT_URL, serve_args are its).
#
# Counts the user-space instructions each target executes per request,
# with valgrind's cachegrind: a count, not a time, so it is the same from
# run to run on a noisy shared machine where req/s swings by a third — the
# figure to judge a change to the hot path by (see gateway/doc.go). It
# leaves out the kernel (the system calls, which are nginx's count, and the
# TCP work they carry) and what instructions cost (cache misses, branch
# mispredictions), so it complements the timed runs and does not replace them.
# valgrind does not emulate the CPU's SHA extensions, so Go hashes the key
# with its AVX2 code there: ~4,500 instructions a request where the SHA-NI
# code natively takes a few hundred (the listing shows it as
# sha256.blockAVX2); GW_ENV and BASE_ENV apply to the two nodes.
#
# Targets (ITARGETS, default "gatehouse nginx-tls", plus base with BASE_BIN):
#   gatehouse   the node (the key path) under cachegrind
#   base        BASE_BIN's node on a copy of the data, likewise
#   floor       bench/floor (the least a Go key-checking TLS proxy does): what
#               of the node's count is Go's and what is Gatehouse's own layers
#   nginx-tls   nginx as ../shared/bench/dataplane.sh configures it (key check
#               against a map, TLS 1.3, keep-alive upstream), one worker
#               process, no master: every request in one process
# Each target runs twice under cachegrind, each time started, loaded by one
# wrk -t1 -c$ICONNS and stopped: for IWARM seconds, then for IWARM+IDURATION;
# instructions per request = (second − first) / (the second's requests − the
# first's). Startup, shutdown and the ICONNS TLS handshakes are in both and
# cancel (a count that subtracted an unloaded run kept the handshakes:
# +14,000 a request at -c64 under the cache model, 13,000 requests in 20 s). The upstream runs natively. Env:
# IDURATION=30 IWARM=5 ICONNS=8 ITOP=25 (functions listed per target, from
# the two runs' difference, per request); IKEEP=DIR keeps the cachegrind
# files there (with line numbers when the binary is built with
# GOEXPERIMENT=nodwarf5 -ldflags=-compressdwarf=false: valgrind 3.19 reads
# neither DWARF 5 nor compressed sections).
# ICACHE=1 also simulates the caches and the branch predictor (valgrind's
# model of this host's: ~3x slower) and prints, per request, instruction
# and data L1 misses, last-level misses and mispredicted branches: what a
# count of instructions leaves out. In December 2026, at -c64: the node
# 632 L1 data misses, 8 last-level, 772 branch misses a request; nginx-TLS
# 374, 0 and 631 (bench/floor 172, 1, 166).
# ICRED=key (default), sts or identity: the credential the gatehouse and base
# nodes are loaded with (nginx always checks the key). The token paths' extra
# instructions, counted; valgrind hashes with AVX2 rather than SHA-NI, so a
# SHA-256 of a token counts ~10x what it costs natively.
command -v valgrind >/dev/null || { echo "--instructions needs valgrind" >&2; exit 2; }
command -v cg_annotate >/dev/null || { echo "--instructions needs cg_annotate (valgrind)" >&2; exit 2; }
IDURATION=${IDURATION:-30}
ICONNS=${ICONNS:-8}
ITOP=${ITOP:-25}
ICRED=${ICRED:-key}
ICACHE=${ICACHE:-0}
IWARM=${IWARM:-5}
case $ICRED in
  key) ICRED_HDR="Ocp-Apim-Subscription-Key: $KEY" ;;
  sts) ICRED_HDR="Authorization: Bearer $STS" ;;
  identity) ICRED_HDR="Authorization: Bearer $IDENTITY" ;;
  *) echo "ICRED is key, sts or identity" >&2; exit 2 ;;
esac
ITARGETS=${ITARGETS:-"gatehouse${BASE_BIN:+ base} nginx-tls"}
NGINX_TLS_PORT=${NGINX_TLS_PORT:-$((PORT + 3))}

"$WORK/upstream" -addr "127.0.0.1:$UPSTREAM_PORT" -tls-addr "127.0.0.1:$UPSTREAM_TLS_PORT" >"$WORK/upstream.log" 2>&1 &
PIDS+=("$!")
wait_url "http://127.0.0.1:$UPSTREAM_PORT/" || { cat "$WORK/upstream.log" >&2; exit 1; }
printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' \
  "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$BODY")" >"$WORK/post.lua"

# The nginx of ../shared/bench/dataplane.sh, in one process.
mkdir -p "$WORK/nginx/logs" "$WORK/nginx/tmp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -keyout "$WORK/nginx/key.pem" -out "$WORK/nginx/cert.pem" >/dev/null 2>&1
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  map_hash_bucket_size 128; # the same 64-character key as the node's: the same request bytes
  map \$http_ocp_apim_subscription_key \$key_ok {
    default 0;
    "$KEY" 1;
  }
  upstream backend {
    server 127.0.0.1:$UPSTREAM_PORT;
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$NGINX_TLS_PORT ssl;
    ssl_certificate $WORK/nginx/cert.pem;
    ssl_certificate_key $WORK/nginx/key.pem;
    ssl_protocols TLSv1.3;
    default_type application/json;
    location / {
      if (\$key_ok = 0) {
        return 401 '{"error":{"code":"401","message":"Access denied"}}';
      }
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Ocp-Apim-Subscription-Key "";
    }
  }
}
EOF

# under_cachegrind TARGET OUT: starts TARGET under cachegrind (counts to OUT),
# waits until it answers; sets VG_PID, ITARGET_URL, STOP_SIG.
under_cachegrind() {
  local t=$1 out=$2 health
  local vg=(valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$out")
  [ "$ICACHE" = 0 ] || vg=(valgrind --tool=cachegrind --cache-sim=yes --branch-sim=yes --cachegrind-out-file="$out")
  case $t in
    gatehouse | base)
      local data=$WORK/data-ig port=$((PORT + 4))
      [ "$t" = gatehouse ] || data=$WORK/data-ib
      rm -rf "$data" && cp -a "$WORK/data" "$data"
      # No asynchronous preemption: its signals are what valgrind handles
      # worst, and they are not part of a request's work. No RDTSCP
      # either: valgrind 3.19 does not decode it on some hosts that have
      # it (the runtime's cputicks, from sysmon, then dies of SIGILL).
      local envs=${GW_ENV:-}
      [ "$t" = gatehouse ] || envs=${BASE_ENV:-}
      # shellcheck disable=SC2086
      env $envs GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off "${vg[@]}" "${BIN_OF[$t]}" serve --data-dir "$data" --listen "127.0.0.1:$port" \
        --host "localhost:$PORT" --msi-listen 127.0.0.1:0 --log-level warn >"$WORK/ig-$t.log" 2>&1 &
      VG_PID=$! STOP_SIG=TERM health="https://localhost:$port/healthz"
      ITARGET_URL=${CHAT_URL/localhost:$PORT/localhost:$port}
      ;;
    floor)
      [ -s "$WORK/floor-cert.pem" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=127.0.0.1 -keyout "$WORK/floor-key.pem" -out "$WORK/floor-cert.pem" >/dev/null 2>&1
      KEY1=$KEY KEY2=$KEY GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off "${vg[@]}" "$WORK/floor" -cert "$WORK/floor-cert.pem" \
        -key "$WORK/floor-key.pem" -addr "127.0.0.1:$((PORT + 5))" -upstream "127.0.0.1:$UPSTREAM_PORT" >"$WORK/ig-$t.log" 2>&1 &
      # floor answers 401 to the key-less health probe: an answer is enough.
      VG_PID=$! STOP_SIG=TERM health="https://127.0.0.1:$((PORT + 5))/healthz"
      ITARGET_URL="https://127.0.0.1:$((PORT + 5))/v1/chat/completions"
      ;;
    nginx-tls)
      "${vg[@]}" nginx -e "$WORK/nginx/logs/error.log" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >"$WORK/ig-$t.log" 2>&1 &
      VG_PID=$! STOP_SIG=QUIT health="https://127.0.0.1:$NGINX_TLS_PORT/healthz"
      ITARGET_URL="https://127.0.0.1:$NGINX_TLS_PORT/v1/chat/completions"
      ;;
    *) echo "unknown instruction target $t" >&2; exit 2 ;;
  esac
  PIDS+=("$VG_PID")
  for _ in $(seq 600); do # valgrind starts a Go binary in tens of seconds
    curl -sk -o /dev/null "$health" && return 0
    kill -0 "$VG_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "$t does not answer under valgrind:" >&2
  tail -20 "$WORK/ig-$t.log" >&2
  exit 1
}

# stop_counted OUT: stops VG_PID and sets COUNTED to the instructions it counted
# (not in a subshell: only this shell can wait for VG_PID).
stop_counted() {
  # The signal is sent again every 15 s while the target runs: under
  # valgrind, nginx has been seen to miss a QUIT and wait forever.
  kill -"$STOP_SIG" "$VG_PID" 2>/dev/null || { echo "$t ended by itself:" >&2; tail -20 "$WORK/ig-$t.log" >&2; exit 1; }
  for i in $(seq 240); do
    kill -0 "$VG_PID" 2>/dev/null || break
    sleep 0.5
    [ $((i % 30)) != 0 ] || kill -"$STOP_SIG" "$VG_PID" 2>/dev/null || true
  done
  wait "$VG_PID" 2>/dev/null || true
  COUNTED=$(awk '/^summary:/ {print $2}' "$1")
  EVENTS=$(awk '/^events:/ {sub(/^events: */, ""); gsub(/ /, ","); print}' "$1")
  SUMMARY=$(awk '/^summary:/ {sub(/^summary: */, ""); gsub(/ /, ","); print}' "$1")
  [ -n "$COUNTED" ] || { echo "no count in $1:" >&2; tail -20 "$WORK/ig-$t.log" >&2; exit 1; }
}

declare -A BIN_OF=([gatehouse]=$BIN [base]=${BASE_BIN:-})
read -r -a ITARGETS <<<"$ITARGETS"
: >"$WORK/instr"
: >"$WORK/events"
# load_wrk SECONDS: one request by curl (that it succeeds), then wrk against
# the target started; sets N to wrk's requests.
load_wrk() {
  local out code
  code=$(curl -sk -o "$WORK/check.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -H "$hdr" --data "$BODY" "$ITARGET_URL")
  [ "$code" = 200 ] || { echo "$t: status $code: $(head -c 300 "$WORK/check.out")" >&2; exit 1; }
  out=$(wrk -t1 -c"$ICONNS" -d"$1s" --timeout 10s -s "$WORK/post.lua" -H "$hdr" "$ITARGET_URL")
  if grep -qE "Non-2xx|Socket errors" <<<"$out"; then echo "$t: errors:" >&2; echo "$out" >&2; exit 1; fi
  N=$(sed -nE 's/^ *([0-9]+) requests in.*/\1/p' <<<"$out")
}
for t in "${ITARGETS[@]}"; do
  [ "$t" != base ] || [ -n "$BASE_BIN" ] || { echo "target base needs BASE_BIN" >&2; exit 2; }
  hdr="Ocp-Apim-Subscription-Key: $KEY"
  case $t in gatehouse | base) hdr=$ICRED_HDR;; esac
  echo "$t: startup and ${IWARM}s of load under cachegrind" >&2
  under_cachegrind "$t" "$WORK/cg-$t-idle.out"
  load_wrk "$IWARM"
  warm_idle=$N
  stop_counted "$WORK/cg-$t-idle.out"
  idle=$COUNTED idle_summary=$SUMMARY
  echo "$t: startup and $((IWARM + IDURATION))s of load under cachegrind" >&2
  under_cachegrind "$t" "$WORK/cg-$t.out"
  load_wrk $((IWARM + IDURATION))
  # The requests the second run made beyond the first's, each run with
  # one wrk of ICONNS connections: startup and the TLS handshakes cancel.
  n=$((N - warm_idle))
  stop_counted "$WORK/cg-$t.out"
  total=$COUNTED
  echo "$t $n $total $idle" >>"$WORK/instr"
  echo "$t $n $EVENTS $SUMMARY $idle_summary" >>"$WORK/events"
  cg_diff "$WORK/cg-$t-idle.out" "$WORK/cg-$t.out" >"$WORK/cg-$t.diff" 2>/dev/null
  cg_annotate --auto=no "$WORK/cg-$t.diff" 2>/dev/null | awk -v n="$n" -v top="$ITOP" -v t="$t" '
    /file:function/ {on = 1; next}
    on && /\(/ && k < top {c = $1; gsub(",", "", c); f = $NF; sub(/^[^:]*:/, "", f)
      if (f == "???") next
      printf "  %-10s %7.0f  %s\n", t, c / n, f; k++}' >>"$WORK/instr-top"
  [ -z "${IKEEP:-}" ] || cp "$WORK/cg-$t.out" "$WORK/cg-$t-idle.out" "$WORK/cg-$t.diff" "$IKEEP/"
done

python3 - "$WORK/instr" "$IDURATION" "$ICONNS" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
print(f"\nuser-space instructions per request (valgrind cachegrind; wrk -t1 -c{sys.argv[3]}, {sys.argv[2]} s, startup and handshakes cancelled)")
print(f"{'target':<11} {'requests':>9} {'instructions/req':>17} {'vs nginx-tls':>13}")
per = {t: (int(tot) - int(idle)) / int(n) for t, n, tot, idle in rows}
for t, n, tot, idle in rows:
    ratio = f"{per[t] / per['nginx-tls']:.3f}" if "nginx-tls" in per else "-"
    print(f"{t:<11} {n:>9} {per[t]:>17.0f} {ratio:>13}")
if "base" in per and "gatehouse" in per:
    print(f"gatehouse / base: {per['gatehouse'] / per['base']:.4f}")
PY
if [ "$ICACHE" != 0 ]; then
  python3 - "$WORK/events" <<'PY'
import sys
print("\nsimulated cache and branch misses per request (cachegrind's model of this host's caches):")
print(f"{'target':<11} {'Ir':>8} {'I1 miss':>8} {'D refs':>8} {'D1 miss':>8} {'LL miss':>8} {'br miss':>8}")
for line in open(sys.argv[1]):
    t, n, ev, load, idle = line.split()
    names = ev.split(",")
    per = {k: (int(a) - int(b)) / int(n) for k, a, b in zip(names, load.split(","), idle.split(","))}
    g = lambda *ks: sum(per.get(k, 0) for k in ks)
    print(f"{t:<11} {g('Ir'):>8.0f} {g('I1mr'):>8.0f} {g('Dr', 'Dw'):>8.0f} {g('D1mr', 'D1mw'):>8.0f} "
          f"{g('ILmr', 'DLmr', 'DLmw'):>8.0f} {g('Bcm', 'Bim'):>8.0f}")
PY
fi
echo
echo "the most instructions per request, by function (the two runs' difference; '???': no symbols):"
cat "$WORK/instr-top"
