//! The cgroup collector on fixture trees (v1/hybrid copied from a real
//! machine, v2 in the kernel's documented layout) with the expected values
//! read from the fixture files here, and on this machine's own tree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use vigie_common::testkit;

const BIN: &str = env!("CARGO_BIN_EXE_vigie-node-exporter");
const DOCKER_ID: &str = "4c01db0b339ca1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f60123";

fn fixture(v: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cgroup")
        .join(v)
}

fn run(root: &Path, extra: &[&str]) -> BTreeMap<String, f64> {
    let procfs = format!("--path.procfs={}", root.join("proc").display());
    let sysfs = format!("--path.sysfs={}", root.join("sys").display());
    let rootfs = format!("--path.rootfs={}", root.join("root").display());
    let mut args = vec![
        "--collector.disable-defaults",
        "--collector.cgroup",
        procfs.as_str(),
        sysfs.as_str(),
        rootfs.as_str(),
    ];
    args.extend_from_slice(extra);
    let p = testkit::spawn_exporter(BIN, &args);
    let (code, _, body) = testkit::http_get(&format!("{}/metrics", p.base()));
    assert_eq!(code, 200);
    testkit::promtool_check(&body, &[]).unwrap();
    assert!(
        body.contains("node_scrape_collector_success{collector=\"cgroup\"} 1"),
        "{body}"
    );
    samples(&body)
}

fn samples(body: &str) -> BTreeMap<String, f64> {
    testkit::parse_samples(body)
        .into_iter()
        .filter(|(s, _)| s.starts_with("container_"))
        .map(|(s, v)| (s, v.parse().unwrap()))
        .collect()
}

fn num(p: &Path) -> f64 {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .parse()
        .unwrap()
}

fn max_or(p: &Path) -> f64 {
    let t = std::fs::read_to_string(p).unwrap();
    if t.trim() == "max" {
        0.0
    } else {
        t.trim().parse().unwrap()
    }
}

fn kv(p: &Path, key: &str) -> f64 {
    let t = std::fs::read_to_string(p).unwrap();
    t.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} missing in {}", p.display()))
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn total(p: &Path, kind: &str) -> f64 {
    let t = std::fs::read_to_string(p).unwrap();
    let l = t.lines().find(|l| l.starts_with(kind)).unwrap();
    let v: f64 = l.rsplit("total=").next().unwrap().parse().unwrap();
    v / 1e6
}

fn mtime(p: &Path) -> Option<f64> {
    let m = std::fs::metadata(p).ok()?.modified().ok()?;
    Some(m.duration_since(UNIX_EPOCH).unwrap().as_secs() as f64)
}

/// Counts of sleeping, running, stopped, uninterruptible tasks.
fn states(proc: &Path, tids: &[String]) -> [f64; 5] {
    let mut s = [0.0; 5];
    for t in tids {
        let st = std::fs::read_to_string(proc.join(t).join("stat")).unwrap();
        let c = st[st.rfind(')').unwrap() + 2..].chars().next().unwrap();
        let i = match c {
            'S' | 'I' => 0,
            'R' => 1,
            'T' => 2,
            'D' => 3,
            _ => continue,
        };
        s[i] += 1.0;
    }
    s
}

struct Expect {
    out: BTreeMap<String, f64>,
}

impl Expect {
    fn put(&mut self, name: &str, labels: &str, extra: &str, v: f64) {
        let mut all: Vec<String> = labels
            .split(',')
            .chain(extra.split(','))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        all.sort();
        self.out.insert(format!("{name}{{{}}}", all.join(",")), v);
    }

    fn states(&mut self, labels: &str, s: [f64; 5]) {
        for (i, n) in [
            "sleeping",
            "running",
            "stopped",
            "uninterruptible",
            "iowaiting",
        ]
        .iter()
        .enumerate()
        {
            self.put(
                "container_tasks_state",
                labels,
                &format!("state=\"{n}\""),
                s[i],
            );
        }
    }
}

fn labels(id: &str, unit: &str) -> String {
    let mut l = format!("id=\"{id}\",unit=\"{unit}\"");
    if id.contains(DOCKER_ID) {
        l.push_str(",image=\"jitsi/web:stable-9584\",name=\"jitsi-web\"");
    }
    l
}

/// What cgroup v1 (separate cpuacct, memory, pids, name=systemd mounts)
/// should give for `rel`, computed from the fixture files.
fn expect_v1(root: &Path, rel: &str, unit: &str, e: &mut Expect) {
    expect_v1_in(root, rel, unit, "cpuacct", e);
}

/// As [`expect_v1`], with the cpuacct hierarchy in directory `cpuacct`.
fn expect_v1_in(root: &Path, rel: &str, unit: &str, cpuacct: &str, e: &mut Expect) {
    let cg = root.join("sys/fs/cgroup");
    let l = labels(&format!("/{rel}"), unit);
    let cpu = cg.join(cpuacct).join(rel);
    e.put(
        "container_cpu_usage_seconds_total",
        &l,
        "cpu=\"total\"",
        num(&cpu.join("cpuacct.usage")) / 1e9,
    );
    e.put(
        "container_cpu_user_seconds_total",
        &l,
        "",
        kv(&cpu.join("cpuacct.stat"), "user") / 100.0,
    );
    e.put(
        "container_cpu_system_seconds_total",
        &l,
        "",
        kv(&cpu.join("cpuacct.stat"), "system") / 100.0,
    );
    let mem = cg.join("memory").join(rel);
    let usage = num(&mem.join("memory.usage_in_bytes"));
    let st = mem.join("memory.stat");
    e.put("container_memory_usage_bytes", &l, "", usage);
    e.put(
        "container_memory_working_set_bytes",
        &l,
        "",
        (usage - kv(&st, "total_inactive_file")).max(0.0),
    );
    e.put("container_memory_rss", &l, "", kv(&st, "total_rss"));
    e.put("container_memory_cache", &l, "", kv(&st, "total_cache"));
    e.put("container_memory_swap", &l, "", kv(&st, "total_swap"));
    e.put(
        "container_memory_mapped_file",
        &l,
        "",
        kv(&st, "total_mapped_file"),
    );
    let lim = num(&mem.join("memory.limit_in_bytes"));
    e.put(
        "container_spec_memory_limit_bytes",
        &l,
        "",
        if lim >= 4.6e18 { 0.0 } else { lim },
    );
    let pids = cg.join("pids").join(rel);
    e.put("container_threads", &l, "", num(&pids.join("pids.current")));
    e.put(
        "container_threads_max",
        &l,
        "",
        max_or(&pids.join("pids.max")),
    );
    let sd = cg.join("systemd").join(rel);
    e.put(
        "container_processes",
        &l,
        "",
        lines(&sd.join("cgroup.procs")).len() as f64,
    );
    e.states(&l, states(&root.join("proc"), &lines(&sd.join("tasks"))));
    let start = ["systemd", "unified", "memory", cpuacct, "pids"]
        .iter()
        .filter_map(|h| mtime(&cg.join(h).join(rel)))
        .reduce(f64::min)
        .unwrap();
    e.put("container_start_time_seconds", &l, "", start);
}

#[test]
fn cgroup_v1_fixture() {
    let root = fixture("v1");
    let got = run(&root, &[]);
    let mut e = Expect {
        out: BTreeMap::new(),
    };
    expect_v1(&root, "system.slice/nginx.service", "nginx.service", &mut e);
    let d = format!("system.slice/docker-{DOCKER_ID}.scope");
    expect_v1(&root, &d, &format!("docker-{DOCKER_ID}.scope"), &mut e);
    assert_eq!(got, e.out);

    // Everything: the real cgroup copied from this machine is there too,
    // with memory only (its other hierarchies did not hold it).
    let all = run(&root, &["--collector.cgroup.include=.*"]);
    let real = "/process_api/834cd2b08956ecbab85d54365e8f9db1";
    let mem = root.join("sys/fs/cgroup/memory").join(&real[1..]);
    let key = |n: &str| format!("{n}{{id=\"{real}\"}}");
    assert_eq!(
        all[&key("container_memory_usage_bytes")],
        num(&mem.join("memory.usage_in_bytes"))
    );
    assert_eq!(
        all[&key("container_memory_rss")],
        kv(&mem.join("memory.stat"), "total_rss")
    );
    assert_eq!(all[&key("container_spec_memory_limit_bytes")], 0.0);
    assert_eq!(all[&key("container_processes")], 1.0);
    assert!(!all.contains_key(&key("container_cpu_usage_seconds_total")));
    // The hybrid unified mount gives the root's pressure.
    let uni = root.join("sys/fs/cgroup/unified");
    assert_eq!(
        all["container_pressure_io_waiting_seconds_total{id=\"/\"}"],
        total(&uni.join("io.pressure"), "some")
    );
    for (k, v) in &got {
        assert_eq!(all.get(k), Some(v), "{k}");
    }
}

/// Pure v1 with the combined `cpu,cpuacct` mount and no unified mount.
#[test]
fn cgroup_v1_combined_fixture() {
    let root = fixture("v1-combined");
    let got = run(&root, &[]);
    let mut e = Expect {
        out: BTreeMap::new(),
    };
    expect_v1_in(
        &root,
        "system.slice/nginx.service",
        "nginx.service",
        "cpu,cpuacct",
        &mut e,
    );
    let d = format!("system.slice/docker-{DOCKER_ID}.scope");
    expect_v1_in(
        &root,
        &d,
        &format!("docker-{DOCKER_ID}.scope"),
        "cpu,cpuacct",
        &mut e,
    );
    assert_eq!(got, e.out);
    let all = run(&root, &["--collector.cgroup.include=.*"]);
    assert!(all.keys().all(|k| !k.starts_with("container_pressure_")));
    assert_eq!(
        all["container_cpu_usage_seconds_total{cpu=\"total\",id=\"/\"}"],
        num(&root.join("sys/fs/cgroup/cpu,cpuacct/cpuacct.usage")) / 1e9
    );
}

#[test]
fn cgroup_v2_fixture() {
    let root = fixture("v2");
    let cg = root.join("sys/fs/cgroup");
    let mut e = Expect {
        out: BTreeMap::new(),
    };
    let units = [
        "system.slice/prosody.service",
        "system.slice/jicofo.service",
        &format!("system.slice/docker-{DOCKER_ID}.scope"),
    ];
    for rel in units {
        let d = cg.join(rel);
        let unit = rel.rsplit('/').next().unwrap();
        let l = labels(&format!("/{rel}"), unit);
        let cpu = d.join("cpu.stat");
        e.put(
            "container_cpu_usage_seconds_total",
            &l,
            "cpu=\"total\"",
            kv(&cpu, "usage_usec") / 1e6,
        );
        e.put(
            "container_cpu_user_seconds_total",
            &l,
            "",
            kv(&cpu, "user_usec") / 1e6,
        );
        e.put(
            "container_cpu_system_seconds_total",
            &l,
            "",
            kv(&cpu, "system_usec") / 1e6,
        );
        let usage = num(&d.join("memory.current"));
        let st = d.join("memory.stat");
        e.put("container_memory_usage_bytes", &l, "", usage);
        e.put(
            "container_memory_working_set_bytes",
            &l,
            "",
            usage - kv(&st, "inactive_file"),
        );
        e.put("container_memory_rss", &l, "", kv(&st, "anon"));
        e.put("container_memory_cache", &l, "", kv(&st, "file"));
        e.put(
            "container_memory_mapped_file",
            &l,
            "",
            kv(&st, "file_mapped"),
        );
        e.put(
            "container_memory_swap",
            &l,
            "",
            num(&d.join("memory.swap.current")),
        );
        e.put(
            "container_spec_memory_limit_bytes",
            &l,
            "",
            max_or(&d.join("memory.max")),
        );
        e.put("container_threads", &l, "", num(&d.join("pids.current")));
        e.put("container_threads_max", &l, "", max_or(&d.join("pids.max")));
        e.put(
            "container_processes",
            &l,
            "",
            lines(&d.join("cgroup.procs")).len() as f64,
        );
        e.states(
            &l,
            states(&root.join("proc"), &lines(&d.join("cgroup.threads"))),
        );
        e.put("container_start_time_seconds", &l, "", mtime(&d).unwrap());
        for res in ["cpu", "memory", "io"] {
            let p = d.join(format!("{res}.pressure"));
            e.put(
                &format!("container_pressure_{res}_waiting_seconds_total"),
                &l,
                "",
                total(&p, "some"),
            );
            e.put(
                &format!("container_pressure_{res}_stalled_seconds_total"),
                &l,
                "",
                total(&p, "full"),
            );
        }
    }
    let got = run(&root, &[]);
    assert_eq!(got, e.out);
    // An include of one unit, an exclude of another.
    let one = run(
        &root,
        &[
            "--collector.cgroup.include=^/system\\.slice/.*",
            "--collector.cgroup.exclude=docker",
        ],
    );
    let ids: std::collections::BTreeSet<&str> = one
        .keys()
        .filter_map(|k| k.split("id=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        ids.into_iter().collect::<Vec<_>>(),
        vec![
            "/system.slice/jicofo.service",
            "/system.slice/prosody.service"
        ]
    );
}

/// This machine's own tree: the collector finds its hierarchies, reports
/// the test's own cgroup, and the values match the files (read just after).
#[test]
fn cgroup_live() {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    // The memory controller's path on v1, else the unified one.
    let path = own_cgroup(&own);
    let p = testkit::spawn_exporter(
        BIN,
        &[
            "--collector.disable-defaults",
            "--collector.cgroup",
            "--collector.cgroup.include=.*",
        ],
    );
    let (code, _, body) = testkit::http_get(&format!("{}/metrics", p.base()));
    assert_eq!(code, 200);
    testkit::promtool_check(&body, &[]).unwrap();
    assert!(
        body.contains("node_scrape_collector_success{collector=\"cgroup\"} 1"),
        "{body}"
    );
    let got = samples(&body);
    let mine: Vec<_> = got
        .keys()
        .filter(|k| k.contains(&format!("id=\"{path}\"")))
        .collect();
    assert!(!mine.is_empty(), "own cgroup {path} not reported:\n{body}");
    if let Some(v) = got.get(&format!("container_memory_usage_bytes{{id=\"{path}\"}}")) {
        assert!(*v > 0.0);
    }
}

/// The test's own cgroup: the memory controller's path on v1/hybrid, the
/// unified one on v2.
fn own_cgroup(text: &str) -> String {
    let entries: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let _ = f.next()?;
            Some((f.next()?, f.next()?))
        })
        .collect();
    entries
        .iter()
        .find(|(c, _)| c.split(',').any(|c| c == "memory"))
        .or_else(|| entries.iter().find(|(c, _)| c.is_empty()))
        .map(|(_, p)| (*p).to_owned())
        .unwrap_or_else(|| "/".to_owned())
}

/// A cgroup made by the test on this machine's tree (root only, skipped
/// where cgroupfs is not writable): reported with its task, then removed
/// and no longer reported, the scrape still succeeding.
#[test]
fn cgroup_live_created_and_removed() {
    let name = format!("vigie-test-{}", std::process::id());
    let made: Vec<PathBuf> = ["memory", "pids", "systemd", "unified", ""]
        .iter()
        .map(|h| Path::new("/sys/fs/cgroup").join(h).join(&name))
        .filter(|d| {
            d.parent().is_some_and(|p| p.join("cgroup.procs").exists())
                && std::fs::create_dir(d).is_ok()
        })
        .collect();
    if made.is_empty() {
        eprintln!("SKIP: cannot create a cgroup here");
        return;
    }
    struct Rm(Vec<PathBuf>);
    impl Drop for Rm {
        fn drop(&mut self) {
            for d in &self.0 {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
    let guard = Rm(made);
    let mut sleeper = testkit::spawn_logged("sleep", &["600".to_owned()]);
    let pid = sleeper.pid().to_string();
    let moved = guard
        .0
        .iter()
        .filter(|d| std::fs::write(d.join("cgroup.procs"), &pid).is_ok())
        .count();
    let include = format!("--collector.cgroup.include=^/{name}$");
    let p = testkit::spawn_exporter(
        BIN,
        &[
            "--collector.disable-defaults",
            "--collector.cgroup",
            &include,
        ],
    );
    let url = format!("{}/metrics", p.base());
    let (_, _, body) = testkit::http_get(&url);
    let got = samples(&body);
    let id = format!("id=\"/{name}\"");
    assert!(got.keys().any(|k| k.contains(&id)), "{body}");
    if moved > 0 {
        assert_eq!(
            got.get(&format!("container_processes{{{id}}}")),
            Some(&1.0),
            "{body}"
        );
        wait_sleeping(&pid);
        let (_, _, body) = testkit::http_get(&url);
        let s = format!("container_tasks_state{{{id},state=\"sleeping\"}}");
        assert_eq!(samples(&body).get(&s), Some(&1.0), "{body}");
    }
    sleeper.signal("KILL");
    sleeper.wait_exit(std::time::Duration::from_secs(10));
    drop(guard);
    let (_, _, body) = testkit::http_get(&url);
    assert!(
        body.contains("node_scrape_collector_success{collector=\"cgroup\"} 1"),
        "{body}"
    );
    assert!(!samples(&body).keys().any(|k| k.contains(&id)), "{body}");
}

fn wait_sleeping(pid: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if st.rfind(')').is_some_and(|i| st[i + 2..].starts_with('S')) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
