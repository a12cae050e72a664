//! The processes collector side by side with Debian's process-exporter
//! 0.7.10: same config, processes of the test's own with known names (two
//! renamed sleeps, a shell with a child, a process with named threads, an
//! odd name, a CPU burner), then the burner and a sleep exit. Names, label
//! sets, num_procs, thread counts, states and start times must be equal;
//! CPU and memory within a small tolerance; counters never go backwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigie_common::testkit::{self, Proc};

const BIN: &str = env!("CARGO_BIN_EXE_vigie-node-exporter");

/// Started by the side-by-side test as a renamed copy of this test binary:
/// a process with named threads. Does nothing in a normal test run.
#[test]
#[ignore = "helper process started by processes_side_by_side"]
fn thread_helper() {
    let me = std::env::current_exe().unwrap();
    let name = me.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !(name.starts_with("vt") && name.ends_with("threads")) {
        return;
    }
    for name in ["vtworker", "vtworker", "vtworker", "vtother"] {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(|| std::thread::sleep(Duration::from_secs(600)))
            .unwrap();
    }
    std::thread::sleep(Duration::from_secs(600));
}

/// ETXTBSY: another test thread forked while this one still held the copied
/// executable open for writing; the fork's copy of that descriptor lives only
/// until its exec, so trying again shortly after succeeds.
const TEXT_FILE_BUSY: i32 = 26;

fn start(bin: &Path, args: &[&str], stdin: bool) -> Proc {
    let deadline = Instant::now() + Duration::from_secs(10);
    let child = loop {
        let spawned = Command::new(bin)
            .args(args)
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => break child,
            Err(e) if e.raw_os_error() == Some(TEXT_FILE_BUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("start {}: {e}", bin.display()),
        }
    };
    Proc {
        child,
        addr: None,
        log: Arc::new(Mutex::new(String::new())),
    }
}

fn copy_exe(from: &Path, dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(from, &to).unwrap();
    to
}

fn stat_fields(pid: u32) -> Option<(String, Vec<String>)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    Some((
        s[open + 1..close].to_owned(),
        s[close + 1..]
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    ))
}

/// Waits until `check` holds, for readiness (no fixed sleeps).
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn children_of(pid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| stat_fields(*p).is_some_and(|(_, f)| f.get(1) == Some(&pid.to_string())))
        .count()
}

fn scrape(base: &str) -> BTreeMap<String, f64> {
    let (code, _, body) = testkit::http_get(&format!("{base}/metrics"));
    assert_eq!(code, 200, "{body}");
    testkit::parse_samples(&body)
        .into_iter()
        .filter(|(s, _)| s.starts_with("namedprocess_namegroup_"))
        .map(|(s, v)| {
            let v: f64 = v
                .parse()
                .unwrap_or_else(|_| panic!("bad value {v} for {s}"));
            (s, v)
        })
        .collect()
}

fn family(series: &str) -> &str {
    series.split('{').next().unwrap_or(series)
}

/// Compares two scrapes: same series; values exact or within tolerance.
fn compare(go: &BTreeMap<String, f64>, us: &BTreeMap<String, f64>) {
    let gk: BTreeSet<&String> = go.keys().collect();
    let uk: BTreeSet<&String> = us.keys().collect();
    let only_go: Vec<_> = gk.difference(&uk).collect();
    let only_us: Vec<_> = uk.difference(&gk).collect();
    assert!(
        only_go.is_empty() && only_us.is_empty(),
        "series differ\nonly process-exporter: {only_go:#?}\nonly vigie: {only_us:#?}"
    );
    for (s, g) in go {
        let u = us[s];
        let f = family(s);
        let ok = if f.ends_with("cpu_seconds_total") {
            (g - u).abs() <= 0.1
        } else if f.ends_with("memory_bytes") {
            // PSS moves as other processes map or unmap shared pages.
            (g - u).abs() <= (0.1 * g.abs()).max(512.0 * 1024.0)
        } else if f.ends_with("_total") {
            (g - u).abs() <= (0.05 * g.abs()).max(30.0)
        } else {
            g == &u
        };
        assert!(ok, "{s}: process-exporter {g}, vigie {u}");
    }
}

#[test]
fn processes_side_by_side() {
    let Some(pe) = testkit::require("prometheus-process-exporter") else {
        return;
    };
    let dir = testkit::scratch_dir("processes-sbs");
    let sleep = testkit::which("sleep").unwrap();
    let bash = testkit::which("bash").unwrap();
    let sa = copy_exe(&sleep, &dir, "vtsleepA");
    let sb = copy_exe(&sleep, &dir, "vtsleepB");
    let odd = copy_exe(&sleep, &dir, "vt odd) (x");
    let parent = copy_exe(&bash, &dir, "vtparent");
    let burn = copy_exe(&bash, &dir, "vtburn");
    let thr = copy_exe(&std::env::current_exe().unwrap(), &dir, "vtthreads");

    let mut pa1 = start(&sa, &["600"], false);
    let pa2 = start(&sa, &["600"], false);
    let pb = start(&sb, &["301"], false);
    let po = start(&odd, &["600"], false);
    let pp = start(&parent, &["-c", "sleep 600 & wait"], false);
    let pt = start(
        &thr,
        &[
            "thread_helper",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ],
        false,
    );
    let mut pburn = start(
        &burn,
        &[
            "-c",
            "read -r _; for ((i=0;i<400000;i++)); do :; done; echo done; read -r _",
        ],
        true,
    );
    for (p, comm) in [
        (&pa1, "vtsleepA"),
        (&pa2, "vtsleepA"),
        (&pb, "vtsleepB"),
        (&po, "vt odd) (x"),
        (&pp, "vtparent"),
        (&pt, "vtthreads"),
        (&pburn, "vtburn"),
    ] {
        let pid = p.pid();
        wait_for(comm, || stat_fields(pid).is_some_and(|(c, _)| c == comm));
    }
    let ppid = pp.pid();
    wait_for("vtparent's child", || children_of(ppid) == 1);
    let tpid = pt.pid();
    wait_for("vtthreads' threads", || {
        stat_fields(tpid)
            .is_some_and(|(_, f)| f.get(17).and_then(|n| n.parse::<u32>().ok()) >= Some(5))
    });

    let cfg = dir.join("processes.yml");
    std::fs::write(
        &cfg,
        "process_names:\n\
         - comm: [vtsleepA]\n\
         - name: 'parent:{{.Comm}}'\n  comm: [vtparent]\n\
         - name: '{{.Comm}}'\n  comm: [vtthreads, vtburn]\n\
         - name: 'odd:{{.ExeBase}}'\n  exe: ['vt odd) (x']\n\
         - name: 'm:{{.Matches.arg}}:{{.Username}}'\n  cmdline: ['vtsleepB\\s+(?P<arg>\\d+)']\n",
    )
    .unwrap();
    let cfg_s = cfg.to_str().unwrap();
    let port = testkit::free_port();
    let go = testkit::spawn_exporter(
        pe.to_str().unwrap(),
        &[
            "-config.path",
            cfg_s,
            &format!("-web.listen-address=127.0.0.1:{port}"),
        ],
    );
    let cfg_arg = format!("--collector.processes.config={cfg_s}");
    let us = testkit::spawn_exporter(
        BIN,
        &[
            "--collector.disable-defaults",
            "--collector.processes",
            &cfg_arg,
        ],
    );

    // Round 1: everything alive and asleep.
    let g1 = scrape(&go.base());
    let u1 = scrape(&us.base());
    let user = testkit::which("id")
        .and_then(|id| Command::new(id).arg("-un").output().ok())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap();
    for (group, n) in [
        ("vtsleepA", 2.0),
        ("parent:vtparent", 2.0),
        ("vtthreads", 1.0),
        ("vtburn", 1.0),
        ("odd:vt odd) (x", 1.0),
        (&format!("m:301:{user}") as &str, 1.0),
    ] {
        let s = format!("namedprocess_namegroup_num_procs{{groupname=\"{group}\"}}");
        assert_eq!(g1.get(&s), Some(&n), "process-exporter {s}: {g1:#?}");
    }
    assert!(
        u1.keys().any(|k| k.contains("threadname=\"vtworker\"")),
        "thread metrics missing: {u1:#?}"
    );
    eprintln!("round 1: {} series compared", g1.len());
    compare(&g1, &u1);

    // Burn ~0.5 s of CPU in a tracked process, then let it and one sleep exit.
    let bpid = pburn.pid();
    let ticks_before = cpu_ticks(bpid);
    pburn
        .child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"go\n")
        .unwrap();
    wait_for("the burner to burn and block again", || {
        cpu_ticks(bpid) > ticks_before + 10 && stat_fields(bpid).is_some_and(|(_, f)| f[0] == "S")
    });
    // Both exporters see the burner alive once more, so the CPU is counted.
    let _ = scrape(&go.base());
    let _ = scrape(&us.base());
    pburn.signal("KILL");
    pburn.wait_exit(Duration::from_secs(10)).unwrap();
    pa1.signal("KILL");
    pa1.wait_exit(Duration::from_secs(10)).unwrap();

    let g2 = scrape(&go.base());
    let u2 = scrape(&us.base());
    eprintln!(
        "round 2: {} series compared; burner cpu {}",
        g2.len(),
        g2.iter()
            .filter(|(k, _)| k.contains("cpu_seconds_total{groupname=\"vtburn\""))
            .map(|(_, v)| *v)
            .sum::<f64>()
    );
    compare(&g2, &u2);
    let burn_cpu = |m: &BTreeMap<String, f64>| -> f64 {
        m.iter()
            .filter(|(k, _)| {
                k.starts_with("namedprocess_namegroup_cpu_seconds_total{groupname=\"vtburn\"")
            })
            .map(|(_, v)| *v)
            .sum()
    };
    assert!(burn_cpu(&u2) >= 0.05, "burner CPU not counted: {u2:#?}");
    assert_eq!(
        u2["namedprocess_namegroup_num_procs{groupname=\"vtburn\"}"],
        0.0
    );
    assert_eq!(
        u2["namedprocess_namegroup_oldest_start_time_seconds{groupname=\"vtburn\"}"],
        -62135596800.0
    );
    assert_eq!(
        u2["namedprocess_namegroup_num_procs{groupname=\"vtsleepA\"}"],
        1.0
    );
    // Counters never go backwards across the exits.
    for (k, v) in &u1 {
        if family(k).ends_with("_total") && !k.contains("threadname=") {
            assert!(
                u2.get(k).is_some_and(|v2| v2 >= v),
                "{k} went from {v} to {:?}",
                u2.get(k)
            );
        }
    }
    drop((pa2, pb, po, pp, pt));
}

fn cpu_ticks(pid: u32) -> u64 {
    stat_fields(pid)
        .map(|(_, f)| f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0))
        .unwrap_or(0)
}

/// The shipped config/processes.yml (Jitsi stack) on stand-ins for prosody,
/// jicofo, the videobridge and nginx, side by side with process-exporter.
#[test]
fn jitsi_config_side_by_side() {
    let Some(pe) = testkit::require("prometheus-process-exporter") else {
        return;
    };
    let dir = testkit::scratch_dir("processes-jitsi");
    let sleep = testkit::which("sleep").unwrap();
    let bash = testkit::which("bash").unwrap();
    let prosody = copy_exe(&sleep, &dir, "prosody");
    let nginx = copy_exe(&sleep, &dir, "nginx");
    let java = copy_exe(&bash, &dir, "java");
    let procs = [
        start(&prosody, &["600"], false),
        start(&nginx, &["600"], false),
        start(&nginx, &["601"], false),
        start(
            &java,
            &["-c", "sleep 600 & wait", "org.jitsi.jicofo.Main"],
            false,
        ),
        start(
            &java,
            &["-c", "sleep 600 & wait", "org.jitsi.videobridge.MainKt"],
            false,
        ),
    ];
    for p in &procs {
        let pid = p.pid();
        wait_for("stand-in", || stat_fields(pid).is_some());
    }
    for p in &procs[3..] {
        let pid = p.pid();
        wait_for("java child", || children_of(pid) == 1);
    }
    let cfg = testkit::workspace_root().join("config/processes.yml");
    let cfg_s = cfg.to_str().unwrap();
    let port = testkit::free_port();
    let go = testkit::spawn_exporter(
        pe.to_str().unwrap(),
        &[
            "-config.path",
            cfg_s,
            &format!("-web.listen-address=127.0.0.1:{port}"),
        ],
    );
    let cfg_arg = format!("--collector.processes.config={cfg_s}");
    let us = testkit::spawn_exporter(
        BIN,
        &[
            "--collector.disable-defaults",
            "--collector.processes",
            &cfg_arg,
        ],
    );
    let g = scrape(&go.base());
    let u = scrape(&us.base());
    for (group, n) in [
        ("prosody", 1.0),
        ("nginx", 2.0),
        ("jicofo", 2.0),
        ("jitsi-videobridge2", 2.0),
    ] {
        let s = format!("namedprocess_namegroup_num_procs{{groupname=\"{group}\"}}");
        assert!(
            g.get(&s).is_some_and(|v| *v >= n),
            "process-exporter {s}: {g:#?}"
        );
    }
    compare(&g, &u);
    drop(procs);
}

/// Both exporters as an unprivileged user (nobody) watching root's
/// processes: /proc/PID/io, fd and smaps are denied. The scrape must still
/// succeed, and both must agree on what they can see.
#[test]
fn unprivileged_side_by_side() {
    let Some(pe) = testkit::require("prometheus-process-exporter") else {
        return;
    };
    let Some(setpriv) = testkit::which("setpriv") else {
        eprintln!("SKIP: setpriv missing");
        return;
    };
    if vigie_common::sys::euid() != 0 {
        eprintln!("SKIP: not root, nothing to be denied");
        return;
    }
    let dir = testkit::scratch_dir("processes-nobody");
    let sleep = testkit::which("sleep").unwrap();
    let bash = testkit::which("bash").unwrap();
    let sa = copy_exe(&sleep, &dir, "vtnsleep");
    let parent = copy_exe(&bash, &dir, "vtnparent");
    let procs = [
        start(&sa, &["600"], false),
        start(&sa, &["600"], false),
        start(&parent, &["-c", "sleep 600 & wait"], false),
    ];
    for p in &procs {
        let pid = p.pid();
        wait_for("stand-in", || stat_fields(pid).is_some());
    }
    let ppid = procs[2].pid();
    wait_for("vtnparent's child", || children_of(ppid) == 1);
    let cfg = dir.join("processes.yml");
    std::fs::write(&cfg, "process_names:\n- comm: [vtnsleep, vtnparent]\n").unwrap();
    let cfg_s = cfg.to_str().unwrap();
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let port = testkit::free_port();
    let listen = format!("-web.listen-address=127.0.0.1:{port}");
    let mut go_args: Vec<&str> = nobody.to_vec();
    go_args.extend([pe.to_str().unwrap(), "-config.path", cfg_s, &listen]);
    let go = testkit::spawn_exporter(setpriv.to_str().unwrap(), &go_args);
    let cfg_arg = format!("--collector.processes.config={cfg_s}");
    let mut us_args: Vec<&str> = nobody.to_vec();
    us_args.extend([
        BIN,
        "--collector.disable-defaults",
        "--collector.processes",
        &cfg_arg,
    ]);
    let us = testkit::spawn_exporter(setpriv.to_str().unwrap(), &us_args);
    let g = scrape(&go.base());
    let u = scrape(&us.base());
    assert_eq!(
        g.get("namedprocess_namegroup_num_procs{groupname=\"vtnsleep\"}"),
        Some(&2.0)
    );
    compare(&g, &u);
    let (_, _, body) = testkit::http_get(&format!("{}/metrics", us.base()));
    assert!(body.contains("node_scrape_collector_success{collector=\"processes\"} 1"));
    let partial = testkit::parse_samples(&body)
        .into_iter()
        .find(|(s, _)| s == "namedprocess_scrape_partial_errors")
        .map(|(_, v)| v.parse::<f64>().unwrap())
        .unwrap();
    assert!(partial > 0.0, "denied files not counted: {body}");
    drop(procs);
}

/// `-children=false -threads=false -gather-smaps=false` on both.
#[test]
fn options_off_side_by_side() {
    let Some(pe) = testkit::require("prometheus-process-exporter") else {
        return;
    };
    let dir = testkit::scratch_dir("processes-off");
    let sleep = testkit::which("sleep").unwrap();
    let bash = testkit::which("bash").unwrap();
    let sa = copy_exe(&sleep, &dir, "vtosleep");
    let parent = copy_exe(&bash, &dir, "vtoparent");
    let thr = copy_exe(&std::env::current_exe().unwrap(), &dir, "vtothreads");
    let procs = [
        start(&sa, &["600"], false),
        start(&parent, &["-c", "sleep 600 & wait"], false),
        start(
            &thr,
            &[
                "thread_helper",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ],
            false,
        ),
    ];
    for p in &procs {
        let pid = p.pid();
        wait_for("stand-in", || stat_fields(pid).is_some());
    }
    let ppid = procs[1].pid();
    wait_for("vtoparent's child", || children_of(ppid) == 1);
    let tpid = procs[2].pid();
    wait_for("vtothreads' threads", || {
        stat_fields(tpid)
            .is_some_and(|(_, f)| f.get(17).and_then(|n| n.parse::<u32>().ok()) >= Some(5))
    });
    let cfg = dir.join("processes.yml");
    std::fs::write(
        &cfg,
        "process_names:\n- comm: [vtosleep, vtoparent, vtothreads]\n",
    )
    .unwrap();
    let cfg_s = cfg.to_str().unwrap();
    let port = testkit::free_port();
    let listen = format!("-web.listen-address=127.0.0.1:{port}");
    let go = testkit::spawn_exporter(
        pe.to_str().unwrap(),
        &[
            "-children=false",
            "-threads=false",
            "-gather-smaps=false",
            "-config.path",
            cfg_s,
            &listen,
        ],
    );
    let cfg_arg = format!("--collector.processes.config={cfg_s}");
    let us = testkit::spawn_exporter(
        BIN,
        &[
            "--collector.disable-defaults",
            "--collector.processes",
            &cfg_arg,
            "--no-collector.processes.children",
            "--collector.processes.threads=false",
            "--collector.processes.gather-smaps=false",
        ],
    );
    let g = scrape(&go.base());
    let u = scrape(&us.base());
    // Without children the shell's sleep is not counted.
    assert_eq!(
        g.get("namedprocess_namegroup_num_procs{groupname=\"vtoparent\"}"),
        Some(&1.0)
    );
    assert!(!u
        .keys()
        .any(|k| k.contains("threadname=") || k.contains("proportional")));
    compare(&g, &u);
    drop(procs);
}
