"""Driver for bench.sh: starts both exporters, alternates keep-alive
scrapes, reports CPU/latency/bytes/VmHWM and ratios."""
import http.client, os, re, socket, subprocess, sys, time

N = int(sys.argv[1]); GO = sys.argv[2]; VIGIE = sys.argv[3]
TICK = os.sysconf("SC_CLK_TCK")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def start(binary):
    port = free_port()
    p = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close(); break
        except OSError:
            time.sleep(0.02)
    return p, port

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = int(f[11]) + int(f[12])          # utime + stime (fields 14, 15)
    ns = sum(int(open(f"/proc/{pid}/task/{t}/schedstat").read().split()[0])
             for t in os.listdir(f"/proc/{pid}/task") if os.path.exists(f"/proc/{pid}/task/{t}/schedstat"))
    return ticks / TICK, ns / 1e9

def hwm(pid):
    return int(re.search(r"VmHWM:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))

def pct(v, q):
    v = sorted(v); return v[max(0, min(len(v) - 1, int(round(q * len(v) + 0.5)) - 1))]

ex = {}
for name, b in (("go", GO), ("vigie", VIGIE)):
    p, port = start(b)
    ex[name] = {"proc": p, "conn": http.client.HTTPConnection("127.0.0.1", port, timeout=10), "lat": [], "bytes": []}
try:
    def scrape(e):
        t = time.perf_counter()
        e["conn"].request("GET", "/metrics")
        r = e["conn"].getresponse(); body = r.read()
        e["lat"].append((time.perf_counter() - t) * 1000); e["bytes"].append(len(body))
    for _ in range(5):                        # warm-up, not counted
        for e in ex.values(): scrape(e)
    for e in ex.values(): e["lat"].clear(); e["bytes"].clear(); e["cpu0"] = cpu(e["proc"].pid)
    for _ in range(N):
        for e in ex.values(): scrape(e)
    res = {}
    for name, e in ex.items():
        c1 = cpu(e["proc"].pid)
        res[name] = dict(cpu=(c1[0] - e["cpu0"][0]) / N * 1000, cpu_ns=(c1[1] - e["cpu0"][1]) / N * 1000,
                         med=pct(e["lat"], 0.5), p99=pct(e["lat"], 0.99),
                         bytes=sorted(e["bytes"])[len(e["bytes"]) // 2], hwm=hwm(e["proc"].pid))
finally:
    for e in ex.values(): e["proc"].kill(); e["proc"].wait()

print(f"{N} alternating keep-alive scrapes per exporter, default collectors")
print(f"{'exporter':<8} {'CPU ms/scrape (stat)':>21} {'(schedstat)':>12} {'median ms':>10} {'p99 ms':>8} {'bytes':>8} {'VmHWM kB':>9}")
for name in ("go", "vigie"):
    r = res[name]
    print(f"{name:<8} {r['cpu']:>21.3f} {r['cpu_ns']:>12.3f} {r['med']:>10.3f} {r['p99']:>8.3f} {r['bytes']:>8} {r['hwm']:>9}")
g, v = res["go"], res["vigie"]
def ratio(k): return v[k] / g[k] if g[k] else float("nan")
print(f"ratio vigie/go: CPU {ratio('cpu'):.2f}x (schedstat {ratio('cpu_ns'):.2f}x, target <= 0.40x), "
      f"median latency {ratio('med'):.2f}x (target <= 0.50x), p99 {ratio('p99'):.2f}x, "
      f"VmHWM {ratio('hwm'):.2f}x (target <= 0.40x), bytes {ratio('bytes'):.2f}x")
