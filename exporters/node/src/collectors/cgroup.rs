//! cgroup: per-service and per-container resource use with cAdvisor's
//! names and `id` label (`container_cpu_usage_seconds_total`,
//! `container_memory_*`, `container_spec_memory_limit_bytes`, ...), off by
//! default. Works on cgroup v1 (separate or combined controller mounts),
//! hybrid (v1 controllers + an empty `unified` v2 mount) and pure v2; the
//! hierarchies are found in /proc/self/mountinfo. Adds a `unit` label (the
//! systemd unit) and, for Docker/containerd/Podman scopes, `name` and
//! `image` read from the runtime's state files on disk.

mod runtime;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use clap::Arg;
use regex::Regex;
use vigie_common::{MetricSet, MetricType};

use super::{BuildCtx, CollectError, Collector, ScrapeCtx, Spec};
use crate::roots::FsRoots;

/// Each systemd service under system.slice, and each container scope or
/// cgroupfs-driver container directory.
pub const DEFAULT_INCLUDE: &str = r"^/system\.slice/[^/]+\.service$|^/(.+/)?(docker|libpod|cri-containerd|crio)-[0-9a-f]{64}\.scope$|^/docker/[0-9a-f]{64}$";

/// Deepest cgroup tree walked, and most cgroups looked at per scrape.
const MAX_DEPTH: usize = 32;
const MAX_CGROUPS: usize = 100_000;
/// Largest number of tasks whose state is read for one cgroup.
const MAX_TASKS: usize = 100_000;

pub fn spec() -> Spec {
    Spec {
        name: "cgroup",
        default_enabled: false,
        args,
        build,
    }
}

fn args() -> Vec<Arg> {
    vec![
        Arg::new("collector.cgroup.include")
            .long("collector.cgroup.include")
            .value_name("REGEX")
            .default_value(DEFAULT_INCLUDE)
            .help("Regexp of cgroup paths (the id label) to report."),
        Arg::new("collector.cgroup.exclude")
            .long("collector.cgroup.exclude")
            .value_name("REGEX")
            .default_value("")
            .help("Regexp of cgroup paths not to report (applied after include)."),
    ]
}

fn build(ctx: &BuildCtx) -> Result<Box<dyn Collector>, String> {
    let include = ctx
        .regex("collector.cgroup.include")?
        .ok_or("--collector.cgroup.include must not be empty")?;
    let exclude = ctx.regex("collector.cgroup.exclude")?;
    Ok(Box::new(Cgroups::new(&ctx.roots, include, exclude)))
}

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    /// Where to read it (the mount point seen through --path.sysfs/rootfs).
    pub dir: PathBuf,
    /// The mount's root inside the hierarchy ("/" on the host).
    pub root: String,
}

/// The hierarchies the collector reads.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Hierarchies {
    pub cpuacct: Option<Mount>,
    pub memory: Option<Mount>,
    pub pids: Option<Mount>,
    pub systemd: Option<Mount>,
    pub unified: Option<Mount>,
}

impl Hierarchies {
    /// From /proc/self/mountinfo text; mount points under /sys are read
    /// under `--path.sysfs`, others under `--path.rootfs`.
    pub fn from_mountinfo(text: &str, roots: &FsRoots) -> Self {
        let mut h = Hierarchies::default();
        for line in text.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            let (Some(root), Some(mp), Some(fstype)) = (pre.get(3), pre.get(4), post.first())
            else {
                continue;
            };
            let mount = Mount {
                dir: resolve(roots, &unescape(mp)),
                root: unescape(root),
            };
            match *fstype {
                "cgroup2" => {
                    h.unified.get_or_insert(mount);
                }
                "cgroup" => {
                    let opts = post.get(2).copied().unwrap_or("");
                    for o in opts.split(',') {
                        let slot = match o {
                            "cpuacct" => &mut h.cpuacct,
                            "memory" => &mut h.memory,
                            "pids" => &mut h.pids,
                            "name=systemd" => &mut h.systemd,
                            _ => continue,
                        };
                        slot.get_or_insert(mount.clone());
                    }
                }
                _ => {}
            }
        }
        h
    }

    fn all(&self) -> impl Iterator<Item = &Mount> {
        [
            &self.systemd,
            &self.unified,
            &self.memory,
            &self.cpuacct,
            &self.pids,
        ]
        .into_iter()
        .flatten()
    }

    fn is_empty(&self) -> bool {
        self.all().next().is_none()
    }
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        let val = oct.map(|d| d.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0')));
        if let (b'\\', Some(v)) = (b[i], val.and_then(|v| u8::try_from(v).ok())) {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn resolve(roots: &FsRoots, mp: &str) -> PathBuf {
    match mp.strip_prefix("/sys/") {
        Some(rest) => roots.sys(rest),
        None if mp == "/sys" => roots.sysfs.clone(),
        None => roots.root(Path::new(mp)),
    }
}

pub struct Cgroups {
    roots: FsRoots,
    include: Regex,
    exclude: Option<Regex>,
    hier: Mutex<Hierarchies>,
    runtime: runtime::Names,
}

/// What one cgroup reports (None: not available on this hierarchy).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Stats {
    pub cpu_total: Option<f64>,
    pub cpu_user: Option<f64>,
    pub cpu_system: Option<f64>,
    pub mem_usage: Option<f64>,
    pub mem_working_set: Option<f64>,
    pub mem_rss: Option<f64>,
    pub mem_cache: Option<f64>,
    pub mem_swap: Option<f64>,
    pub mem_mapped_file: Option<f64>,
    pub mem_limit: Option<f64>,
    pub threads: Option<f64>,
    pub threads_max: Option<f64>,
    pub processes: Option<f64>,
    /// sleeping, running, stopped, uninterruptible, iowaiting
    pub tasks_state: Option<[f64; 5]>,
    pub start_time: Option<f64>,
    /// (resource, some total seconds, full total seconds)
    pub pressure: Vec<(&'static str, Option<f64>, Option<f64>)>,
}

impl Cgroups {
    pub fn new(roots: &FsRoots, include: Regex, exclude: Option<Regex>) -> Self {
        let c = Cgroups {
            roots: roots.clone(),
            include,
            exclude,
            hier: Mutex::new(Hierarchies::default()),
            runtime: runtime::Names::new(roots),
        };
        c.hierarchies();
        c
    }

    /// The mounts, found once (again while none is found).
    fn hierarchies(&self) -> Hierarchies {
        let mut h = match self.hier.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if h.is_empty() {
            let path = self.roots.proc("self/mountinfo");
            match std::fs::read_to_string(&path) {
                Ok(t) => *h = Hierarchies::from_mountinfo(&t, &self.roots),
                Err(e) => tracing::debug!(path = %path.display(), err = %e, "mountinfo unreadable"),
            }
        }
        h.clone()
    }

    /// Every cgroup path of every hierarchy (as `id`s), filtered.
    fn cgroup_ids(&self, h: &Hierarchies) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for m in h.all() {
            let mut stack = vec![(m.dir.clone(), 0usize)];
            while let Some((dir, depth)) = stack.pop() {
                if ids.len() >= MAX_CGROUPS {
                    tracing::warn!(max = MAX_CGROUPS, "too many cgroups; the rest is left out");
                    return ids;
                }
                let Ok(rel) = dir.strip_prefix(&m.dir) else {
                    continue;
                };
                let id = make_id(&m.root, rel);
                if self.wanted(&id) {
                    ids.insert(id);
                }
                if depth >= MAX_DEPTH {
                    continue;
                }
                let Ok(rd) = std::fs::read_dir(&dir) else {
                    tracing::debug!(dir = %dir.display(), "cgroup vanished or unreadable; skipped");
                    continue;
                };
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push((e.path(), depth + 1));
                    }
                }
            }
        }
        ids
    }

    fn wanted(&self, id: &str) -> bool {
        self.include.is_match(id) && !self.exclude.as_ref().is_some_and(|r| r.is_match(id))
    }

    /// Reads one cgroup's files (missing files leave fields empty).
    pub fn stats(&self, h: &Hierarchies, id: &str) -> Stats {
        let mut s = Stats::default();
        let v1 = |m: &Option<Mount>| {
            m.as_ref()
                .and_then(|m| dir_of(m, id))
                .filter(|d| d.is_dir())
        };
        let v2 = v1(&h.unified);
        // CPU: cpuacct (v1) or cpu.stat (v2, present even without the cpu controller).
        if let Some(d) = v1(&h.cpuacct) {
            s.cpu_total = read_u64(&d.join("cpuacct.usage")).map(|ns| ns as f64 / 1e9);
            if let Some(t) = read_kv(&d.join("cpuacct.stat")) {
                // USER_HZ ticks (100 per second on Linux).
                let tick = 1.0 / vigie_common::sys::clock_ticks().max(1) as f64;
                s.cpu_user = t.get("user").map(|v| *v as f64 * tick);
                s.cpu_system = t.get("system").map(|v| *v as f64 * tick);
            }
        } else if let Some(t) = v2.as_ref().and_then(|d| read_kv(&d.join("cpu.stat"))) {
            s.cpu_total = t.get("usage_usec").map(|v| *v as f64 / 1e6);
            s.cpu_user = t.get("user_usec").map(|v| *v as f64 / 1e6);
            s.cpu_system = t.get("system_usec").map(|v| *v as f64 / 1e6);
        }
        // Memory.
        if let Some(d) = v1(&h.memory) {
            s.mem_usage = read_u64(&d.join("memory.usage_in_bytes")).map(|v| v as f64);
            let st = read_kv(&d.join("memory.stat")).unwrap_or_default();
            let g = |k: &str| st.get(k).map(|v| *v as f64);
            s.mem_rss = g("total_rss");
            s.mem_cache = g("total_cache");
            s.mem_swap = g("total_swap");
            s.mem_mapped_file = g("total_mapped_file");
            s.mem_working_set = working_set(s.mem_usage, g("total_inactive_file"));
            s.mem_limit = read_u64(&d.join("memory.limit_in_bytes")).map(v1_limit);
        } else if let Some(d) = v2.as_ref().filter(|d| d.join("memory.current").exists()) {
            s.mem_usage = read_u64(&d.join("memory.current")).map(|v| v as f64);
            let st = read_kv(&d.join("memory.stat")).unwrap_or_default();
            let g = |k: &str| st.get(k).map(|v| *v as f64);
            s.mem_rss = g("anon");
            s.mem_cache = g("file");
            s.mem_mapped_file = g("file_mapped");
            s.mem_swap = read_u64(&d.join("memory.swap.current")).map(|v| v as f64);
            s.mem_working_set = working_set(s.mem_usage, g("inactive_file"));
            s.mem_limit = read_max(&d.join("memory.max")).map(|v| v.unwrap_or(0) as f64);
        }
        // Threads (pids controller) and processes.
        let pids_dir =
            v1(&h.pids).or_else(|| v2.clone().filter(|d| d.join("pids.current").exists()));
        if let Some(d) = pids_dir {
            s.threads = read_u64(&d.join("pids.current")).map(|v| v as f64);
            s.threads_max = read_max(&d.join("pids.max")).map(|v| v.unwrap_or(0) as f64);
        }
        // Tasks: the first hierarchy holding the cgroup.
        let task_dir = [&h.systemd, &h.memory, &h.cpuacct, &h.pids]
            .into_iter()
            .find_map(|m| v1(m).map(|d| (d, "tasks")))
            .or_else(|| v2.clone().map(|d| (d, "cgroup.threads")));
        if let Some((d, tasks_file)) = &task_dir {
            if let Ok(t) = std::fs::read_to_string(d.join("cgroup.procs")) {
                s.processes = Some(t.lines().filter(|l| !l.trim().is_empty()).count() as f64);
            }
            if let Ok(t) = std::fs::read_to_string(d.join(tasks_file)) {
                let tids: Vec<&str> = t.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
                if s.threads.is_none() {
                    s.threads = Some(tids.len() as f64);
                }
                s.tasks_state = Some(self.task_states(&tids));
            }
        }
        // Creation time: the oldest directory mtime across hierarchies.
        s.start_time = h
            .all()
            .filter_map(|m| dir_of(m, id))
            .filter_map(|d| std::fs::metadata(d).ok()?.modified().ok())
            .filter_map(|t| t.duration_since(UNIX_EPOCH).ok())
            // cAdvisor reports whole seconds.
            .map(|d| d.as_secs() as f64)
            .reduce(f64::min);
        // Pressure (v2 only).
        if let Some(d) = &v2 {
            for res in ["cpu", "memory", "io"] {
                if let Ok(t) = std::fs::read_to_string(d.join(format!("{res}.pressure"))) {
                    let (some, full) = parse_pressure(&t);
                    s.pressure.push((res, some, full));
                }
            }
        }
        s
    }

    fn task_states(&self, tids: &[&str]) -> [f64; 5] {
        let mut st = [0f64; 5];
        for tid in tids.iter().take(MAX_TASKS) {
            let Ok(text) = std::fs::read(self.roots.proc(&format!("{tid}/stat"))) else {
                continue; // exited, or in another pid namespace
            };
            let Some(close) = text.iter().rposition(|&b| b == b')') else {
                continue;
            };
            let state = text.get(close + 2).copied().unwrap_or(b'?');
            let i = match state {
                b'S' | b'I' => 0,
                b'R' => 1,
                b'T' | b't' => 2,
                b'D' => 3,
                _ => continue,
            };
            st[i] += 1.0;
        }
        st
    }

    fn write(&self, id: &str, s: &Stats, out: &mut MetricSet) {
        let mut labels: Vec<(String, String)> = vec![("id".into(), id.into())];
        if let Some(u) = unit_of(id) {
            labels.push(("unit".into(), u.into()));
        }
        if let Some(c) = runtime::container_of(id) {
            if let Some(info) = self.runtime.lookup(&c) {
                if !info.name.is_empty() {
                    labels.push(("name".into(), info.name));
                }
                if !info.image.is_empty() {
                    labels.push(("image".into(), info.image));
                }
            }
        }
        let with = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
            let mut l = labels.clone();
            l.extend(
                extra
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            );
            l
        };
        use MetricType::{Counter, Gauge};
        let mut put =
            |name: &str, help: &str, kind: MetricType, extra: &[(&str, &str)], v: Option<f64>| {
                if let Some(v) = v {
                    out.family(name, help, kind).add_owned(with(extra), v);
                }
            };
        put(
            "container_cpu_usage_seconds_total",
            "Cumulative cpu time consumed in seconds.",
            Counter,
            &[("cpu", "total")],
            s.cpu_total,
        );
        put(
            "container_cpu_user_seconds_total",
            "Cumulative user cpu time consumed in seconds.",
            Counter,
            &[],
            s.cpu_user,
        );
        put(
            "container_cpu_system_seconds_total",
            "Cumulative system cpu time consumed in seconds.",
            Counter,
            &[],
            s.cpu_system,
        );
        put("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed", Gauge, &[], s.mem_usage);
        put(
            "container_memory_working_set_bytes",
            "Current working set in bytes.",
            Gauge,
            &[],
            s.mem_working_set,
        );
        put(
            "container_memory_rss",
            "Size of RSS in bytes.",
            Gauge,
            &[],
            s.mem_rss,
        );
        put(
            "container_memory_cache",
            "Number of bytes of page cache memory.",
            Gauge,
            &[],
            s.mem_cache,
        );
        put(
            "container_memory_swap",
            "Container swap usage in bytes.",
            Gauge,
            &[],
            s.mem_swap,
        );
        put(
            "container_memory_mapped_file",
            "Size of memory mapped files in bytes.",
            Gauge,
            &[],
            s.mem_mapped_file,
        );
        put(
            "container_spec_memory_limit_bytes",
            "Memory limit for the container.",
            Gauge,
            &[],
            s.mem_limit,
        );
        put(
            "container_threads",
            "Number of threads running inside the container",
            Gauge,
            &[],
            s.threads,
        );
        put(
            "container_threads_max",
            "Maximum number of threads allowed inside the container, infinity if value is zero",
            Gauge,
            &[],
            s.threads_max,
        );
        put(
            "container_processes",
            "Number of processes running inside the container.",
            Gauge,
            &[],
            s.processes,
        );
        if let Some(ts) = s.tasks_state {
            for (i, st) in [
                "sleeping",
                "running",
                "stopped",
                "uninterruptible",
                "iowaiting",
            ]
            .iter()
            .enumerate()
            {
                put(
                    "container_tasks_state",
                    "Number of tasks in given state",
                    Gauge,
                    &[("state", st)],
                    Some(ts[i]),
                );
            }
        }
        put(
            "container_start_time_seconds",
            "Start time of the container since unix epoch in seconds.",
            Gauge,
            &[],
            s.start_time,
        );
        for (res, some, full) in &s.pressure {
            let (what, congestion) = match *res {
                "cpu" => ("cpu", "CPU congestion"),
                "memory" => ("memory", "memory lack"),
                _ => ("io", "IO congestion"),
            };
            put(
                &format!("container_pressure_{what}_waiting_seconds_total"),
                &format!(
                    "Total time duration tasks in the container have waited due to {congestion}."
                ),
                Counter,
                &[],
                *some,
            );
            put(
                &format!("container_pressure_{what}_stalled_seconds_total"),
                &format!("Total time duration no tasks in the container could make progress due to {congestion}."),
                Counter,
                &[],
                *full,
            );
        }
    }
}

impl Collector for Cgroups {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let h = self.hierarchies();
        if h.is_empty() {
            return Err(CollectError::NoData);
        }
        let ids = self.cgroup_ids(&h);
        let mut seen_containers = Vec::new();
        for id in &ids {
            if std::time::Instant::now() > ctx.deadline {
                return Err(CollectError::Other(
                    "deadline reached while reading cgroups".into(),
                ));
            }
            let s = self.stats(&h, id);
            if s == Stats::default() {
                tracing::debug!(id, "cgroup vanished or has no readable file; skipped");
                continue;
            }
            if let Some(c) = runtime::container_of(id) {
                seen_containers.push(c);
            }
            self.write(id, &s, out);
        }
        self.runtime.retain(&seen_containers);
        Ok(())
    }
}

/// `id` of a directory: the mount's root joined with the relative path.
fn make_id(root: &str, rel: &Path) -> String {
    let rel = rel.to_string_lossy();
    let root = root.trim_end_matches('/');
    if rel.is_empty() {
        return if root.is_empty() {
            "/".into()
        } else {
            root.into()
        };
    }
    format!("{root}/{rel}")
}

/// The directory of cgroup `id` in a mount (None if outside its root).
fn dir_of(m: &Mount, id: &str) -> Option<PathBuf> {
    let root = m.root.trim_end_matches('/');
    let rel = if root.is_empty() {
        id
    } else {
        let r = id.strip_prefix(root)?;
        if !(r.is_empty() || r.starts_with('/')) {
            return None;
        }
        r
    };
    let rel = rel.trim_start_matches('/');
    if rel.split('/').any(|c| c == "..") {
        return None;
    }
    Some(if rel.is_empty() {
        m.dir.clone()
    } else {
        m.dir.join(rel)
    })
}

/// The systemd unit a cgroup belongs to: its deepest path component that
/// is a unit name (`nginx.service`, `docker-<id>.scope`, `user.slice`).
pub fn unit_of(id: &str) -> Option<&str> {
    const SUFFIXES: [&str; 7] = [
        ".service", ".scope", ".slice", ".socket", ".mount", ".swap", ".device",
    ];
    id.rsplit('/')
        .find(|c| SUFFIXES.iter().any(|s| c.len() > s.len() && c.ends_with(s)))
}

fn working_set(usage: Option<f64>, inactive_file: Option<f64>) -> Option<f64> {
    let u = usage?;
    Some((u - inactive_file.unwrap_or(0.0)).max(0.0))
}

/// v1 reports "no limit" as a huge page-aligned number: cAdvisor's panels
/// expect 0 there.
fn v1_limit(v: u64) -> f64 {
    if v >= 1 << 62 {
        0.0
    } else {
        v as f64
    }
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// A v2 `max`-style file: `Some(None)` for "max".
fn read_max(p: &Path) -> Option<Option<u64>> {
    let t = std::fs::read_to_string(p).ok()?;
    let t = t.trim();
    if t == "max" {
        return Some(None);
    }
    t.parse().ok().map(Some)
}

/// A flat-keyed file (`key value` lines).
fn read_kv(p: &Path) -> Option<HashMap<String, u64>> {
    let t = std::fs::read_to_string(p).ok()?;
    Some(
        t.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_owned(), v.trim().parse().ok()?))
            })
            .collect(),
    )
}

/// `some ... total=N` / `full ... total=N` (microseconds) to seconds.
pub fn parse_pressure(text: &str) -> (Option<f64>, Option<f64>) {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let kind = it.next();
        let total = it
            .find_map(|f| f.strip_prefix("total="))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|us| us as f64 / 1e6);
        match kind {
            Some("some") => some = total,
            Some("full") => full = total,
            _ => {}
        }
    }
    (some, full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> FsRoots {
        FsRoots {
            procfs: "/p".into(),
            sysfs: "/s".into(),
            rootfs: "/r".into(),
            udev_data: "/u".into(),
        }
    }

    #[test]
    fn mountinfo_hybrid_separate_and_combined() {
        let hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let h = Hierarchies::from_mountinfo(hybrid, &roots());
        assert_eq!(
            h.cpuacct.as_ref().unwrap().dir,
            PathBuf::from("/s/fs/cgroup/cpuacct")
        );
        assert_eq!(
            h.unified.as_ref().unwrap().dir,
            PathBuf::from("/s/fs/cgroup/unified")
        );
        assert!(h.pids.is_none());
        let combined = "25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct\n\
26 24 0:23 /docker/abc /cgroup/memory rw - cgroup cgroup rw,memory\n";
        let h = Hierarchies::from_mountinfo(combined, &roots());
        assert_eq!(
            h.cpuacct.as_ref().unwrap().dir,
            PathBuf::from("/s/fs/cgroup/cpu,cpuacct")
        );
        let m = h.memory.unwrap();
        assert_eq!(
            (m.dir, m.root.as_str()),
            (PathBuf::from("/r/cgroup/memory"), "/docker/abc")
        );
        let v2 = Hierarchies::from_mountinfo(
            "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
            &roots(),
        );
        assert_eq!(v2.unified.unwrap().dir, PathBuf::from("/s/fs/cgroup"));
        assert!(Hierarchies::from_mountinfo("garbage\n\n - x", &roots()).is_empty());
        assert_eq!(unescape(r"/a\040b"), "/a b");
    }

    #[test]
    fn ids_units_pressure_limits() {
        let m = Mount {
            dir: "/s/fs/cgroup/memory".into(),
            root: "/".into(),
        };
        assert_eq!(dir_of(&m, "/"), Some(PathBuf::from("/s/fs/cgroup/memory")));
        assert_eq!(
            dir_of(&m, "/a/b"),
            Some(PathBuf::from("/s/fs/cgroup/memory/a/b"))
        );
        assert_eq!(dir_of(&m, "/a/../x"), None);
        let m2 = Mount {
            dir: "/c".into(),
            root: "/docker/abc".into(),
        };
        assert_eq!(dir_of(&m2, "/docker/abc/x"), Some(PathBuf::from("/c/x")));
        assert_eq!(dir_of(&m2, "/docker/abcd"), None);
        assert_eq!(make_id("/", Path::new("")), "/");
        assert_eq!(make_id("/", Path::new("a/b")), "/a/b");
        assert_eq!(make_id("/docker/x", Path::new("")), "/docker/x");
        assert_eq!(
            unit_of("/system.slice/nginx.service"),
            Some("nginx.service")
        );
        assert_eq!(
            unit_of("/system.slice/nginx.service/sub"),
            Some("nginx.service")
        );
        assert_eq!(unit_of("/process_api/abc"), None);
        assert_eq!(unit_of("/.service"), None);
        assert_eq!(
            parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=1500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=25\n"),
            (Some(1.5), Some(0.000025))
        );
        assert_eq!(parse_pressure("some avg10=0.00 total=x\n"), (None, None));
        assert_eq!(v1_limit(9223372036854771712), 0.0);
        assert_eq!(v1_limit(1 << 30), (1u64 << 30) as f64);
        let inc = Regex::new(DEFAULT_INCLUDE).unwrap();
        assert!(inc.is_match("/system.slice/nginx.service"));
        assert!(!inc.is_match("/system.slice/nginx.service/x"));
        assert!(!inc.is_match("/user.slice"));
        let id = "0123456789abcdef".repeat(4);
        assert!(inc.is_match(&format!("/system.slice/docker-{id}.scope")));
        assert!(inc.is_match(&format!("/machine.slice/libpod-{id}.scope")));
        assert!(inc.is_match(&format!("/docker/{id}")));
    }
}
