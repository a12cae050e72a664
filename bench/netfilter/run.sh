#!/usr/bin/env bash
# Cost per scrape of the netfilter collector with 1,000 rules (half with a
# comment) and a 10,000-element set, in a private network namespace (the
# host's firewall is never touched). Compared with what shell-out
# exporters pay per scrape: one `nft -j list ruleset` (or `nft list
# ruleset`) process. node_exporter 1.5 has no such collector.
#
# Usage (root): bash bench/netfilter/run.sh [SCRAPES]
# Builds the release binary unless VIGIE_BIN points at one.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-500}

if [ "${VIGIE_BENCH_NETNS:-}" != 1 ]; then
	[ "$(id -u)" -eq 0 ] || { echo "bench/netfilter: needs root (unshare -n)" >&2; exit 1; }
	if [ -z "${VIGIE_BIN:-}" ]; then
		cargo build --release -q -p vigie-node-exporter
		export VIGIE_BIN=$PWD/target/release/vigie-node-exporter
	fi
	exec unshare -n env VIGIE_BENCH_NETNS=1 VIGIE_BIN="$VIGIE_BIN" RULES="${RULES:-1000}" ELEMENTS="${ELEMENTS:-10000}" bash "$0" "$N"
fi

# Inside the namespace: refuse anything but a fresh one (only lo).
links=$(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
[ "$links" = "lo " ] || { echo "bench/netfilter: not a private namespace ($links)" >&2; exit 2; }
ip link set lo up

rules=${RULES:-1000} elements=${ELEMENTS:-10000}
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
{
	echo "table inet bench {"
	echo "  set blocklist { type ipv4_addr; }"
	echo "  chain input {"
	echo "    type filter hook input priority 0; policy accept;"
	echo "    ip saddr @blocklist counter drop comment \"blocklist\""
	for i in $(seq 1 $((rules - 1))); do
		if [ $((i % 2)) -eq 0 ]; then
			echo "    tcp dport $((10000 + i)) counter accept comment \"rule $i\""
		else
			echo "    tcp dport $((10000 + i)) counter accept"
		fi
	done
	echo "  }"
	echo "}"
} >"$tmp/ruleset.nft"
awk -v n="$elements" 'BEGIN {
	printf "add element inet bench blocklist { "
	for (i = 0; i < n; i++)
		printf "%s10.%d.%d.%d", (i ? ", " : ""), 100 + int(i / 65536), int(i / 256) % 256, i % 256
	print " }"
}' >"$tmp/elements.nft"
nft -f "$tmp/ruleset.nft"
nft -f "$tmp/elements.nft"

port=19199
"$VIGIE_BIN" --collector.disable-defaults --collector.netfilter \
	--web.listen-address=127.0.0.1:$port --log.level=warn 2>"$tmp/log" &
pid=$!
for _ in $(seq 100); do
	curl -sf -o /dev/null "http://127.0.0.1:$port/metrics" && break
	sleep 0.05
done
url="http://127.0.0.1:$port/metrics?collect%5B%5D=netfilter"
curl -s "$url" >"$tmp/metrics.txt"
grep -q 'node_scrape_collector_success{collector="netfilter"} 1' "$tmp/metrics.txt" || {
	echo "collector failed:"; cat "$tmp/log"; exit 1
}
series=$(grep -c '^node_netfilter_' "$tmp/metrics.txt")
bytes=$(wc -c <"$tmp/metrics.txt")

cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
sys_ticks() { awk '{print $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)

# One curl process, N requests on a kept-alive connection.
urls=()
for _ in $(seq "$N"); do urls+=("$url"); done
t0=$(date +%s%N); c0=$(cpu_ticks); s0=$(sys_ticks)
curl -s "${urls[@]}" >/dev/null
t1=$(date +%s%N); c1=$(cpu_ticks); s1=$(sys_ticks)
wall_ms=$(awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN { printf "%.3f", (b - a) / n / 1e6 }')
cpu_ms=$(awk -v a="$c0" -v b="$c1" -v n="$N" -v hz="$hz" 'BEGIN { printf "%.3f", (b - a) * 1000 / hz / n }')
sys_ms=$(awk -v a="$s0" -v b="$s1" -v n="$N" -v hz="$hz" 'BEGIN { printf "%.3f", (b - a) * 1000 / hz / n }')
# Mean of the collector's own duration over 50 scrapes.
coll_ms=$(for _ in $(seq 50); do curl -s "$url"; done |
	awk '/^node_scrape_collector_duration_seconds\{collector="netfilter"\}/ { t += $2; n++ } END { printf "%.3f", t * 1000 / n }')
rss_kb=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")

# The shell-out alternative: one nft process per scrape.
M=$(( N / 10 > 20 ? N / 10 : 20 ))
shell_cost() { # prints "wall_ms cpu_ms" per run
	local t0 t1 cpu
	t0=$(date +%s%N)
	cpu=$( { TIMEFORMAT='%U %S'; time (for _ in $(seq "$M"); do "$@" >/dev/null; done); } 2>&1 )
	t1=$(date +%s%N)
	awk -v a="$t0" -v b="$t1" -v n="$M" -v c="$cpu" 'BEGIN { split(c, u, " "); printf "%.3f %.3f\n", (b - a) / n / 1e6, (u[1] + u[2]) * 1000 / n }'
}
read -r nft_json_ms nft_json_cpu < <(shell_cost nft -j list ruleset)
read -r nft_text_ms nft_text_cpu < <(shell_cost nft list ruleset)

echo "netfilter collector, ${rules} rules + ${elements}-element set, ${N} scrapes (release build, $(nproc) cores)"
echo "  series per scrape            ${series} (${bytes} bytes of exposition)"
echo "  wall per scrape (HTTP)       ${wall_ms} ms"
echo "  collector duration (mean)    ${coll_ms} ms"
echo "  exporter CPU per scrape      ${cpu_ms} ms (of which kernel ${sys_ms} ms: the nf_tables dumps)"
echo "  exporter peak RSS            ${rss_kb} kB"
echo "  nft -j list ruleset          ${nft_json_ms} ms wall, ${nft_json_cpu} ms CPU per run (what shell-out exporters pay per scrape)"
echo "  nft list ruleset             ${nft_text_ms} ms wall, ${nft_text_cpu} ms CPU per run"
awk -v a="$nft_json_ms" -v b="$wall_ms" -v c="$nft_json_cpu" -v d="$cpu_ms" \
	'BEGIN { printf "  ratio nft -j / vigie        %.1fx wall, %.1fx CPU\n", a / b, c / d }'
