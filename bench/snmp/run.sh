#!/usr/bin/env bash
# Benchmark: vigie-snmp-exporter vs Debian's prometheus-snmp-exporter (0.21),
# side by side, module if_mib (upstream 0.21 definition, same file for both),
# against net-snmp snmpd agents on 127.0.0.1 (snmpsim is too slow: it hides
# the exporters' difference).
#
#   bash bench/snmp/run.sh [SCRAPES] [CONCURRENT_TOTAL]
#
# Round 1: SCRAPES (default 200) sequential scrapes per exporter, alternating
#          one Vigie / one Go, after 10 warm-up scrapes each. Prints CPU per
#          scrape (utime+stime of the exporter process), median and p90
#          latency, VmHWM, and the Vigie/Go ratios.
# Round 2: CONCURRENT_TOTAL (default 400) scrapes, 40 at a time, spread over
#          4 snmpd "devices"; prints wall time and devices polled per minute.
# Only loopback addresses are used; everything started is stopped by PID.
set -euo pipefail

N=${1:-200}
TOTAL=${2:-400}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${VIGIE_BIN:-$ROOT/target/release/vigie-snmp-exporter}
GO=${GO_BIN:-prometheus-snmp-exporter}
[ -x "$BIN" ] || { echo "build first: cargo build --release -p vigie-snmp-exporter" >&2; exit 1; }
command -v "$GO" >/dev/null || { echo "$GO not installed" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl not installed" >&2; exit 1; }

W=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
freetcp() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.4f", ($14+$15)/t}' "/proc/$1/stat"; }
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# Agents ("devices").
AGENTS=()
for i in 1 2 3 4; do
  port=$(freeport)
  mkdir -p "$W/a$i/persist"
  printf 'rocommunity public 127.0.0.1\nsysLocation bench\n' > "$W/a$i/snmpd.conf"
  SNMP_PERSISTENT_DIR="$W/a$i/persist" /usr/sbin/snmpd -f -Lo -C -c "$W/a$i/snmpd.conf" -m '' "udp:127.0.0.1:$port" >"$W/a$i/log" 2>&1 &
  PIDS+=($!)
  AGENTS+=("$port")
done
for port in "${AGENTS[@]}"; do
  for _ in $(seq 50); do snmpget -m '' -v2c -c public -t 0.2 -r 0 "127.0.0.1:$port" 1.3.6.1.2.1.1.3.0 >/dev/null 2>&1 && break; sleep 0.1; done
done

# Same config for both: the upstream 0.21 if_mib module.
awk '/^if_mib:/{p=1; print; next} /^[a-z_]+:/{p=0} p' "$ROOT/exporters/snmp/tests/fixtures/snmp_exporter-0.21.0-snmp.yml" > "$W/snmp.yml"

VP=$(freetcp); GP=$(freetcp)
"$BIN" --config.file="$W/snmp.yml" --web.listen-address="127.0.0.1:$VP" --web.max-requests=0 ${VIGIE_ARGS:-} >"$W/vigie.log" 2>&1 &
VPID=$!; PIDS+=($VPID)
"$GO" --config.file="$W/snmp.yml" --web.listen-address="127.0.0.1:$GP" >"$W/go.log" 2>&1 &
GPID=$!; PIDS+=($GPID)
for p in $VP $GP; do for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$p/" && break; sleep 0.05; done; done

A0=${AGENTS[0]}
URLV="http://127.0.0.1:$VP/snmp?target=127.0.0.1:$A0&module=if_mib"
URLG="http://127.0.0.1:$GP/snmp?target=127.0.0.1:$A0&module=if_mib"
for _ in $(seq 10); do curl -s -o /dev/null "$URLV"; curl -s -o /dev/null "$URLG"; done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URLV")" = 200 ] || { echo "Vigie scrape failed" >&2; exit 1; }

echo "== round 1: $N sequential if_mib scrapes each, alternating (agent: snmpd on 127.0.0.1:$A0)"
v0=$(cpu $VPID); g0=$(cpu $GPID)
: > "$W/lat_v"; : > "$W/lat_g"
vcpu=0; gcpu=0
for _ in $(seq "$N"); do
  a=$(cpu $VPID); curl -s -o /dev/null -w '%{time_total}\n' "$URLV" >> "$W/lat_v"; b=$(cpu $VPID)
  vcpu=$(echo "$vcpu + $b - $a" | bc -l)
  a=$(cpu $GPID); curl -s -o /dev/null -w '%{time_total}\n' "$URLG" >> "$W/lat_g"; b=$(cpu $GPID)
  gcpu=$(echo "$gcpu + $b - $a" | bc -l)
done
v1=$(cpu $VPID); g1=$(cpu $GPID)

python3 - "$W" "$N" "$v0" "$v1" "$g0" "$g1" "$(hwm $VPID)" "$(hwm $GPID)" <<'EOF'
import sys, statistics
w, n = sys.argv[1], int(sys.argv[2])
v0, v1, g0, g1 = map(float, sys.argv[3:7])
vh, gh = int(sys.argv[7]), int(sys.argv[8])
def lat(f):
    xs = sorted(float(x) * 1000 for x in open(f) if x.strip())
    return statistics.median(xs), xs[int(len(xs) * 0.9) - 1]
vm, v90 = lat(w + "/lat_v"); gm, g90 = lat(w + "/lat_g")
vc, gc = (v1 - v0) / n * 1000, (g1 - g0) / n * 1000
print(f"{'':22}{'vigie':>10}{'go 0.21':>10}{'ratio':>8}  target")
print(f"{'CPU per scrape (ms)':22}{vc:10.3f}{gc:10.3f}{vc/gc:8.2f}  <= 0.5")
print(f"{'median latency (ms)':22}{vm:10.3f}{gm:10.3f}{vm/gm:8.2f}  <= 0.8")
print(f"{'p90 latency (ms)':22}{v90:10.3f}{g90:10.3f}{v90/g90:8.2f}")
print(f"{'VmHWM (MiB)':22}{vh/1024:10.1f}{gh/1024:10.1f}{vh/gh:8.2f}  <= 0.5")
print("(CPU from /proc/PID/stat at 10 ms clock-tick resolution, summed over all scrapes)")
EOF

echo "== round 2: $TOTAL if_mib scrapes, 40 concurrent, over ${#AGENTS[@]} snmpd devices"
urls() { local port=$1; for i in $(seq "$TOTAL"); do a=${AGENTS[$((i % ${#AGENTS[@]}))]}; echo "http://127.0.0.1:$port/snmp?target=127.0.0.1:$a&module=if_mib"; done; }
for name in vigie go; do
  if [ $name = vigie ]; then port=$VP; pid=$VPID; else port=$GP; pid=$GPID; fi
  urls "$port" > "$W/urls"
  c0=$(cpu "$pid"); t0=$(date +%s.%N)
  xargs -P 40 -n 1 curl -s -o /dev/null -w '%{http_code}\n' < "$W/urls" > "$W/codes_$name"
  t1=$(date +%s.%N); c1=$(cpu "$pid")
  ok=$(grep -c '^200$' "$W/codes_$name" || true)
  python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); ok=int(sys.argv[3]); c=float(sys.argv[5])-float(sys.argv[4]); print(f'{sys.argv[6]:6} {ok}/{sys.argv[7]} ok in {t:.2f} s: {ok/t*60:,.0f} device scrapes per minute, CPU {c*1000/max(ok,1):.3f} ms per scrape, VmHWM {int(sys.argv[8])/1024:.1f} MiB')" \
    "$t0" "$t1" "$ok" "$c0" "$c1" "$name" "$TOTAL" "$(hwm "$pid")"
done
echo "(round 2 is bound by the 4 single-threaded snmpd agents and curl on the same 2 cores)"
