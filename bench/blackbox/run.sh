#!/usr/bin/env bash
# Side-by-side benchmark: vigie-blackbox-exporter vs Debian's Go
# blackbox_exporter 0.23 (run by hand, not a test).
#
#  1. HTTP module against a fast loopback target (asyncio, fixed 12-byte 200,
#     Connection: close), wrk with 8 connections, alternating 10 s rounds
#     (Go, Vigie, Go, Vigie, ...): probes/s, CPU-seconds per 1000 probes,
#     VmHWM after the load, and the Vigie/Go ratios.
#  2. Memory with 1,000 probes in flight against a target that accepts and
#     never answers (module timeout 5 s): VmRSS while in flight and VmHWM.
#
# Usage: bash bench/blackbox/run.sh [ROUNDS] [SECONDS]     (defaults 3 and 10)
# Needs: wrk, python3, prometheus-blackbox-exporter. Only loopback is used.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
SECS=${2:-10}
GO=${GO_BLACKBOX:-/usr/bin/prometheus-blackbox-exporter}
VIGIE=target/release/vigie-blackbox-exporter
[ -x "$VIGIE" ] || cargo build --release -p vigie-blackbox-exporter
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not ready"; exit 1; }

FAST=$(free_port); SLOW=$(free_port); GOP=$(free_port); VP=$(free_port)
cat > "$WORK/targets.py" <<'PY'
import asyncio, sys
fast, slow = int(sys.argv[1]), int(sys.argv[2])
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nhello world\n"
async def fast_h(r, w):
    try:
        await r.readuntil(b"\r\n\r\n")
        w.write(RESP); await w.drain()
    except Exception:
        pass
    w.close()
async def slow_h(r, w):
    await asyncio.sleep(60)   # accept, never answer
    w.close()
async def main():
    a = await asyncio.start_server(fast_h, "127.0.0.1", fast, backlog=4096)
    b = await asyncio.start_server(slow_h, "127.0.0.1", slow, backlog=4096)
    await asyncio.gather(a.serve_forever(), b.serve_forever())
asyncio.run(main())
PY
python3 "$WORK/targets.py" "$FAST" "$SLOW" & PIDS+=($!)
cat > "$WORK/blackbox.yml" <<YML
modules:
  http_2xx_ip4:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
YML
"$GO" --config.file="$WORK/blackbox.yml" --web.listen-address=127.0.0.1:"$GOP" 2>"$WORK/go.log" & GOPID=$!; PIDS+=($GOPID)
"$VIGIE" --config.file="$WORK/blackbox.yml" --web.listen-address=127.0.0.1:"$VP" --web.max-requests=0 --history.limit=100 2>"$WORK/vigie.log" & VPID=$!; PIDS+=($VPID)
wait_port "$FAST"; wait_port "$SLOW"; wait_port "$GOP"; wait_port "$VP"

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hwm() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
CLK=$(getconf CLK_TCK)
declare -A REQS=() TICKS=()
REQS[go]=0; REQS[vigie]=0; TICKS[go]=0; TICKS[vigie]=0

round() { # name pid port
  local url="http://127.0.0.1:$3/probe?module=http_2xx_ip4&target=http://127.0.0.1:$FAST/"
  local t0; t0=$(ticks "$2")
  local out; out=$(wrk -t 2 -c 8 -d "${SECS}s" --timeout 10s "$url")
  local t1; t1=$(ticks "$2")
  local n; n=$(echo "$out" | awk '/requests in/{print $1}')
  local rps; rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  local errs; errs=$(echo "$out" | awk '/Non-2xx|Socket errors/{print}' | tr '\n' ' ')
  REQS[$1]=$(( ${REQS[$1]} + n )); TICKS[$1]=$(( ${TICKS[$1]} + t1 - t0 ))
  printf '  round %-5s %8s probes/s  %6s probes  cpu %5s ticks %s\n' "$1" "$rps" "$n" "$((t1 - t0))" "$errs"
}

# Warm up both (first TLS/DNS init, page faults), then alternate.
for p in "$GOP" "$VP"; do wrk -t 1 -c 2 -d 1s "http://127.0.0.1:$p/probe?module=http_2xx_ip4&target=http://127.0.0.1:$FAST/" >/dev/null; done
echo "HTTP probes, wrk -t 2 -c 8, ${ROUNDS} x ${SECS}s each, alternating:"
for i in $(seq "$ROUNDS"); do round go "$GOPID" "$GOP"; round vigie "$VPID" "$VP"; done

summary() { # name pid
  local n=${REQS[$1]} t=${TICKS[$1]}
  local pps; pps=$(awk -v n="$n" -v s="$((ROUNDS * SECS))" 'BEGIN{printf "%.0f", n/s}')
  local cpu; cpu=$(awk -v t="$t" -v c="$CLK" -v n="$n" 'BEGIN{printf "%.3f", (t/c)/n*1000}')
  echo "$pps $cpu $(hwm "$2")"
}
read -r GPPS GCPU GHWM <<<"$(summary go "$GOPID")"
read -r VPPS VCPU VHWM <<<"$(summary vigie "$VPID")"
printf '\n%-8s %12s %22s %12s\n' exporter probes/s "CPU-s per 1000 probes" "VmHWM (kB)"
printf '%-8s %12s %22s %12s\n' go "$GPPS" "$GCPU" "$GHWM" vigie "$VPPS" "$VCPU" "$VHWM"
awk -v a="$VPPS" -v b="$GPPS" -v c="$VCPU" -v d="$GCPU" -v e="$VHWM" -v f="$GHWM" 'BEGIN{
  printf "ratios vigie/go: probes/s %.2fx (target >= 2.0)  CPU per probe %.2fx (target <= 0.5)  VmHWM %.2fx (target <= 0.5)\n", a/b, c/d, e/f }'

# In-flight memory: 1,000 concurrent probes of a silent target (each waits its 5 s timeout).
echo
echo "1,000 probes in flight against a silent target (fresh exporters, timeout 5s):"
inflight() { # name bin extra...
  local name=$1 bin=$2; shift 2
  local port; port=$(free_port)
  "$bin" --config.file="$WORK/blackbox.yml" --web.listen-address=127.0.0.1:"$port" "$@" 2>/dev/null & local pid=$!
  PIDS+=($pid)
  wait_port "$port"
  local idle; idle=$(rss "$pid")
  wrk -t 2 -c 1000 -d 4s --timeout 10s "http://127.0.0.1:$port/probe?module=http_2xx_ip4&target=http://127.0.0.1:$SLOW/" >/dev/null 2>&1 &
  local wpid=$!
  sleep 3
  local during; during=$(rss "$pid")
  local fds; fds=$(ls "/proc/$pid/fd" | wc -l)
  wait "$wpid" || true
  local peak; peak=$(hwm "$pid")
  printf '  %-6s idle RSS %6s kB  in flight RSS %7s kB  VmHWM %7s kB  fds %5s  => %5.0f kB per in-flight probe\n' \
    "$name" "$idle" "$during" "$peak" "$fds" "$(awk -v a="$during" -v b="$idle" 'BEGIN{print (a-b)/1000}')"
  kill "$pid" 2>/dev/null || true
  echo "$during $peak" > "$WORK/inflight.$name"
}
inflight go "$GO"
inflight vigie "$VIGIE" --web.max-requests=0
read -r GD GP < "$WORK/inflight.go"; read -r VD VPk < "$WORK/inflight.vigie"
awk -v a="$VD" -v b="$GD" -v c="$VPk" -v d="$GP" 'BEGIN{printf "  ratios vigie/go: in-flight RSS %.2fx  VmHWM %.2fx\n", a/b, c/d}'
