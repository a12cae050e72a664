#!/usr/bin/env bash
# CPU per scrape of vigie-node-exporter's processes + cgroup collectors
# against prometheus-process-exporter alone, same config, with ~300
# processes of the bench's own (renamed sleeps, 6 names x 50) spread over
# 50 cgroups made for the bench (v1 memory/cpuacct/pids where mounted and
# the unified/v2 tree; left out when cgroupfs is not writable).
#
# Usage (root for the cgroups): bash bench/processes/run.sh [SCRAPES]
# Builds the release binary unless VIGIE_BIN points at one.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200}
PROCS=${PROCS:-300}
CGROUPS=${CGROUPS:-50}
PE=$(command -v prometheus-process-exporter) || { echo "prometheus-process-exporter not installed" >&2; exit 1; }
if [ -z "${VIGIE_BIN:-}" ]; then
	cargo build --release -q -p vigie-node-exporter
	VIGIE_BIN=$PWD/target/release/vigie-node-exporter
fi
tmp=$(mktemp -d)
pids=()
made=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for ((i = ${#made[@]} - 1; i >= 0; i--)); do rmdir "${made[$i]}" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# Cgroups: one bench parent per writable hierarchy, CGROUPS children.
roots=()
while read -r _ _ _ _ mp _ rest; do
	fstype=${rest#*- }
	fstype=${fstype%% *}
	opts=${rest##* }
	case $fstype in
	cgroup2) roots+=("$mp") ;;
	cgroup) case ",$opts," in *,memory,* | *,cpuacct,* | *,pids,* | *,name=systemd,*) roots+=("$mp") ;; esac ;;
	esac
done </proc/self/mountinfo
cgdirs=()
for r in "${roots[@]}"; do
	if mkdir "$r/vigie-bench" 2>/dev/null; then
		made+=("$r/vigie-bench")
		for ((c = 0; c < CGROUPS; c++)); do
			mkdir "$r/vigie-bench/svc$c.service" && made+=("$r/vigie-bench/svc$c.service")
		done
		cgdirs+=("$r/vigie-bench")
	fi
done
echo "cgroups: $CGROUPS under each of: ${cgdirs[*]:-(none: cgroupfs not writable)}"

# Processes: 6 names, PROCS in all, each moved into cgroup i % CGROUPS.
names=(vbnginx vbprosody vbjicofo vbjvb vbturn vbmisc)
for n in "${names[@]}"; do cp "$(command -v sleep)" "$tmp/$n"; done
for ((i = 0; i < PROCS; i++)); do
	"$tmp/${names[$((i % 6))]}" 3600 &
	p=$!
	pids+=("$p")
	for d in "${cgdirs[@]}"; do
		f=$d/svc$((i % CGROUPS)).service/cgroup.procs
		echo "$p" >"$f" 2>/dev/null || true
	done
done
cat >"$tmp/processes.yml" <<EOF
process_names:
  - name: nginx
    comm: [vbnginx]
  - name: prosody
    cmdline: ['vbprosody']
  - name: jicofo
    comm: [vbjicofo]
  - name: jvb
    exe: [vbjvb]
  - name: '{{.Comm}}'
    comm: [vbturn, vbmisc]
EOF

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
clk=$(getconf CLK_TCK)

# measure PID URL: CPU seconds per scrape over N scrapes (after a warm-up).
measure() {
	local pid=$1 url=$2
	for _ in 1 2 3; do curl -sf -o /dev/null "$url"; done
	local t0 s0 s1
	s0=$(ticks "$pid")
	t0=$(date +%s.%N)
	for ((k = 0; k < N; k++)); do curl -sf -o /dev/null "$url"; done
	s1=$(ticks "$pid")
	awk -v a="$s0" -v b="$s1" -v n="$N" -v c="$clk" -v t0="$t0" -v t1="$(date +%s.%N)" \
		'BEGIN { printf "%.6f %.6f\n", (b - a) / c / n, (t1 - t0) / n }'
}

wait_http() { for _ in $(seq 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done; return 1; }

gp=$(port)
"$PE" -config.path "$tmp/processes.yml" -web.listen-address "127.0.0.1:$gp" >"$tmp/pe.log" 2>&1 &
pe_pid=$!
pids+=("$pe_pid")
wait_http "http://127.0.0.1:$gp/metrics"
read -r pe_cpu pe_lat < <(measure "$pe_pid" "http://127.0.0.1:$gp/metrics")
kill "$pe_pid"

vp=$(port)
"$VIGIE_BIN" --collector.disable-defaults --collector.processes --collector.cgroup \
	--collector.processes.config="$tmp/processes.yml" \
	'--collector.cgroup.include=^/vigie-bench/' \
	--web.listen-address="127.0.0.1:$vp" >"$tmp/vigie.log" 2>&1 &
v_pid=$!
pids+=("$v_pid")
wait_http "http://127.0.0.1:$vp/metrics"
groups=$(curl -s "http://127.0.0.1:$vp/metrics" | grep -c '^namedprocess_namegroup_num_procs')
cgs=$(curl -s "http://127.0.0.1:$vp/metrics" | grep -c '^container_start_time_seconds')
read -r v_cpu v_lat < <(measure "$v_pid" "http://127.0.0.1:$vp/metrics")
# The two collectors apart (node_exporter's collect[] filter).
read -r vp_cpu _ < <(measure "$v_pid" "http://127.0.0.1:$vp/metrics?collect[]=processes")
read -r vc_cpu _ < <(measure "$v_pid" "http://127.0.0.1:$vp/metrics?collect[]=cgroup")

echo "processes: $PROCS bench processes ($(ls /proc | grep -c '^[0-9]') on the machine), $groups groups; cgroups reported: $cgs; $N scrapes each"
awk -v pc="$pe_cpu" -v pl="$pe_lat" -v vc="$v_cpu" -v vl="$v_lat" -v vpc="$vp_cpu" -v vcc="$vc_cpu" 'BEGIN {
	printf "%-44s %12s %12s\n", "", "CPU/scrape", "latency"
	printf "%-44s %9.3f ms %9.3f ms\n", "prometheus-process-exporter (processes)", pc * 1000, pl * 1000
	printf "%-44s %9.3f ms %9.3f ms\n", "vigie-node-exporter (processes + cgroup)", vc * 1000, vl * 1000
	printf "%-44s %9.3f ms\n", "  of which processes alone", vpc * 1000
	printf "%-44s %9.3f ms\n", "  of which cgroup alone", vcc * 1000
}'
awk -v a="$v_cpu" -v b="$pe_cpu" 'BEGIN { if (b > 0) printf "ratio vigie / process-exporter (CPU per scrape): %.2f\n", a / b }'
