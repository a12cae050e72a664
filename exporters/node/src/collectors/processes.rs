//! processes: process-exporter 0.7 compatible process groups
//! (`namedprocess_namegroup_*`), off by default.
//!
//! Each scrape reads /proc/<pid>/stat of every process; only processes seen
//! for the first time are read further (cmdline, status) to be named, and
//! only tracked ones have their status, io, fd, limits, smaps and threads
//! read. As in process-exporter, a process's counters count from the first
//! time it is seen, and a group's counters are accumulated deltas, so they
//! never go backwards when a process exits; a group once seen stays in the
//! output (num_procs 0) for the life of the exporter.

mod config;
mod procfs;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::{Arg, ArgAction};
use vigie_common::{MetricSet, MetricType};

use super::{BuildCtx, CollectError, Collector, ScrapeCtx, Spec};
use config::{go_time_string, Matchers, ProcInfo};
use procfs::{Stat, Status};

pub fn spec() -> Spec {
    Spec {
        name: "processes",
        default_enabled: false,
        args,
        build,
    }
}

/// `--<id>[=BOOL]` (process-exporter's `-threads=false` style) and a hidden
/// kingpin-style `--no-<id>`.
fn bool_arg(id: &'static str, help: &'static str) -> [Arg; 2] {
    let no: &'static str = Box::leak(format!("no-{id}").into_boxed_str());
    [
        bool_value_arg(id, help).overrides_with(no),
        Arg::new(no)
            .long(no)
            .action(ArgAction::SetTrue)
            .overrides_with(id)
            .hide(true),
    ]
}

fn bool_value_arg(id: &'static str, help: &'static str) -> Arg {
    Arg::new(id)
        .long(id)
        .value_name("BOOL")
        .help(help)
        .num_args(0..=1)
        .require_equals(true)
        .default_value("true")
        .default_missing_value("true")
        .value_parser(clap::value_parser!(bool))
        .action(ArgAction::Set)
}

fn args() -> Vec<Arg> {
    let mut v = vec![Arg::new("collector.processes.config")
        .long("collector.processes.config")
        .value_name("FILE")
        .help("process-exporter config file (process_names: ...); default: every process with a command line, grouped by comm.")];
    for (id, help) in [
        (
            "collector.processes.children",
            "Count a process's children that match no item in their parent's group.",
        ),
        (
            "collector.processes.threads",
            "Report per-thread-name metrics (namedprocess_namegroup_thread_*, threads_wchan).",
        ),
        (
            "collector.processes.gather-smaps",
            "Read smaps_rollup for the proportional memory types.",
        ),
    ] {
        v.extend(bool_arg(id, help));
    }
    v
}

fn flag_or_true(ctx: &BuildCtx, id: &str) -> bool {
    if ctx.flag(&format!("no-{id}")) {
        return false;
    }
    ctx.matches
        .try_get_one::<bool>(id)
        .ok()
        .flatten()
        .copied()
        .unwrap_or(true)
}

fn build(ctx: &BuildCtx) -> Result<Box<dyn Collector>, String> {
    let matchers = match ctx.string("collector.processes.config") {
        Some(p) if !p.is_empty() => Matchers::load(Path::new(&p))?,
        _ => Matchers::parse(Path::new("<default>"), config::DEFAULT_CONFIG)?,
    };
    let opts = Options {
        children: flag_or_true(ctx, "collector.processes.children"),
        threads: flag_or_true(ctx, "collector.processes.threads"),
        smaps: flag_or_true(ctx, "collector.processes.gather-smaps"),
    };
    let c = Processes::new(
        matchers,
        opts,
        ctx.roots.procfs.clone(),
        ctx.roots.root(Path::new("/etc/passwd")),
    );
    // process-exporter takes a first look at start: counters count from there.
    c.cycle();
    Ok(Box::new(c))
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub children: bool,
    pub threads: bool,
    pub smaps: bool,
}

/// The counters of a process or thread, in kernel units (ticks, bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    utime: u64,
    stime: u64,
    read: u64,
    write: u64,
    majflt: u64,
    minflt: u64,
    vol: u64,
    nonvol: u64,
}

impl Counts {
    fn delta(&self, prev: &Counts) -> Counts {
        Counts {
            utime: self.utime.saturating_sub(prev.utime),
            stime: self.stime.saturating_sub(prev.stime),
            read: self.read.saturating_sub(prev.read),
            write: self.write.saturating_sub(prev.write),
            majflt: self.majflt.saturating_sub(prev.majflt),
            minflt: self.minflt.saturating_sub(prev.minflt),
            vol: self.vol.saturating_sub(prev.vol),
            nonvol: self.nonvol.saturating_sub(prev.nonvol),
        }
    }

    fn add(&mut self, o: &Counts) {
        self.utime = self.utime.saturating_add(o.utime);
        self.stime = self.stime.saturating_add(o.stime);
        self.read = self.read.saturating_add(o.read);
        self.write = self.write.saturating_add(o.write);
        self.majflt = self.majflt.saturating_add(o.majflt);
        self.minflt = self.minflt.saturating_add(o.minflt);
        self.vol = self.vol.saturating_add(o.vol);
        self.nonvol = self.nonvol.saturating_add(o.nonvol);
    }

    fn of(stat: &Stat, status: &Status, io: Option<(u64, u64)>) -> Counts {
        let (read, write) = io.unwrap_or((0, 0));
        Counts {
            utime: stat.utime,
            stime: stat.stime,
            read,
            write,
            majflt: stat.majflt,
            minflt: stat.minflt,
            vol: status.voluntary,
            nonvol: status.nonvoluntary,
        }
    }
}

/// A process as the tracker knows it (keyed by pid; the start time tells a
/// reused pid apart).
struct Tracked {
    start: u64,
    /// `None`: seen and ignored (matches nothing, no tracked ancestor).
    group: Option<Arc<str>>,
    /// Not read yet: its first counts are the baseline, not a delta.
    fresh: bool,
    last: Counts,
    threads: HashMap<u32, (u64, Counts)>,
}

/// A group's current gauges (recomputed each scrape).
#[derive(Default)]
struct Gauges {
    procs: u64,
    resident: u64,
    virt: u64,
    swapped: u64,
    pss: u64,
    swap_pss: u64,
    fds: u64,
    worst_fd_ratio: f64,
    oldest: Option<u64>,
    threads: u64,
    states: [u64; 5],
    wchans: BTreeMap<String, u64>,
    /// threadname -> (count, delta this scrape)
    thread_names: BTreeMap<String, (u64, Counts)>,
}

#[derive(Default)]
struct State {
    tracked: HashMap<u32, Tracked>,
    /// Every group ever seen, with its accumulated counters.
    accum: BTreeMap<Arc<str>, Counts>,
    /// group -> threadname -> accumulated thread counters (names not seen in
    /// a scrape are dropped, as process-exporter does).
    thread_accum: HashMap<Arc<str>, HashMap<String, Counts>>,
    users: HashMap<u32, String>,
    users_loaded: bool,
    scrape_errors: u64,
    partial_errors: u64,
    procread_errors: u64,
    last: BTreeMap<Arc<str>, Gauges>,
}

pub struct Processes {
    matchers: Matchers,
    opts: Options,
    proc_root: PathBuf,
    passwd: PathBuf,
    ticks: f64,
    page: u64,
    state: Mutex<State>,
}

const STATES: [&str; 5] = ["Running", "Sleeping", "Waiting", "Zombie", "Other"];

fn state_index(s: u8) -> usize {
    match s {
        b'R' => 0,
        b'S' => 1,
        b'D' => 2,
        b'Z' => 3,
        _ => 4,
    }
}

/// Go's zero time.Time as Unix seconds: what process-exporter reports as
/// the oldest start time of a group with no process.
const GO_ZERO_TIME: f64 = -62_135_596_800.0;

impl Processes {
    pub fn new(matchers: Matchers, opts: Options, proc_root: PathBuf, passwd: PathBuf) -> Self {
        Processes {
            matchers,
            opts,
            proc_root,
            passwd,
            ticks: vigie_common::sys::clock_ticks().max(1) as f64,
            page: vigie_common::sys::page_size(),
            state: Mutex::new(State::default()),
        }
    }

    /// One look at /proc: updates the tracker and the groups' gauges.
    fn cycle(&self) {
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let st = &mut *st;
        let pids = procfs::list_ids(&self.proc_root);
        if pids.is_empty() {
            tracing::debug!(path = %self.proc_root.display(), "no process found");
            st.scrape_errors += 1;
            return;
        }
        let btime = procfs::boot_time(&self.proc_root).unwrap_or(0);
        let mut buf = Vec::with_capacity(4096);
        // 1. stat of every process.
        let mut seen: HashMap<u32, Stat> = HashMap::with_capacity(pids.len());
        for pid in pids {
            let path = self.proc_root.join(pid.to_string()).join("stat");
            match procfs::read_into(&path, &mut buf) {
                Ok(()) => match procfs::parse_stat(&buf) {
                    Some(s) => {
                        seen.insert(pid, s);
                    }
                    None => {
                        tracing::debug!(path = %path.display(), "unparsable stat; skipped");
                        st.procread_errors += 1;
                    }
                },
                Err(e) => tracing::debug!(pid, err = %e, "process vanished or unreadable; skipped"),
            }
        }
        // 2. Forget processes that are gone (or whose pid was reused).
        st.tracked
            .retain(|pid, t| seen.get(pid).is_some_and(|s| s.starttime == t.start));
        // 3. Name the new ones.
        self.classify_new(st, &seen, btime, &mut buf);
        // 4. Read the tracked ones and fold them into their groups.
        let mut groups: BTreeMap<Arc<str>, Gauges> = BTreeMap::new();
        let mut deltas: BTreeMap<Arc<str>, Counts> = BTreeMap::new();
        let mut partial = 0u64;
        for (pid, t) in st.tracked.iter_mut() {
            let Some(group) = t.group.clone() else {
                continue;
            };
            let Some(stat) = seen.get(pid) else {
                continue;
            };
            let g = groups.entry(Arc::clone(&group)).or_default();
            let d = deltas.entry(group).or_default();
            partial += self.read_tracked(*pid, stat, t, btime, g, d, &mut buf);
        }
        st.partial_errors += partial;
        // 5. Accumulate: counters only grow, groups never disappear.
        for (name, d) in &deltas {
            st.accum.entry(Arc::clone(name)).or_default().add(d);
        }
        for (name, g) in groups.iter_mut() {
            let acc = st.thread_accum.entry(Arc::clone(name)).or_default();
            acc.retain(|k, _| g.thread_names.contains_key(k));
            for (tname, (_, d)) in g.thread_names.iter_mut() {
                let a = acc.entry(tname.clone()).or_default();
                a.add(d);
                *d = *a;
            }
        }
        st.thread_accum.retain(|k, _| groups.contains_key(k));
        st.last = groups;
    }

    fn classify_new(
        &self,
        st: &mut State,
        seen: &HashMap<u32, Stat>,
        btime: u64,
        buf: &mut Vec<u8>,
    ) {
        let mut new: Vec<u32> = seen
            .keys()
            .copied()
            .filter(|p| !st.tracked.contains_key(p))
            .collect();
        new.sort_unstable();
        let mut untracked: Vec<u32> = Vec::new();
        for pid in new {
            let Some(stat) = seen.get(&pid) else { continue };
            let Some(info) = self.proc_info(st, pid, stat, btime, buf) else {
                continue;
            };
            let group = self.matchers.match_and_name(&info).map(Arc::<str>::from);
            if group.is_none() {
                untracked.push(pid);
            }
            st.tracked.insert(
                pid,
                Tracked {
                    start: stat.starttime,
                    group,
                    fresh: true,
                    last: Counts::default(),
                    threads: HashMap::new(),
                },
            );
        }
        if !self.opts.children {
            return;
        }
        // A new process that matches nothing joins its nearest tracked
        // ancestor's group (new ancestors included).
        let new_set: std::collections::HashSet<u32> = untracked.iter().copied().collect();
        for pid in untracked {
            let mut cur = pid;
            let mut found: Option<Arc<str>> = None;
            for _ in 0..1024 {
                let Some(ppid) = seen.get(&cur).map(|s| s.ppid) else {
                    break;
                };
                if ppid == 0 || ppid == cur {
                    break;
                }
                match st.tracked.get(&ppid) {
                    Some(t) if t.group.is_some() => {
                        found = t.group.clone();
                        break;
                    }
                    Some(_) if new_set.contains(&ppid) => cur = ppid,
                    _ => break,
                }
            }
            if let (Some(g), Some(t)) = (found, st.tracked.get_mut(&pid)) {
                t.group = Some(g);
            }
        }
    }

    /// What a new process is matched on; `None` when it vanished meanwhile.
    fn proc_info(
        &self,
        st: &mut State,
        pid: u32,
        stat: &Stat,
        btime: u64,
        buf: &mut Vec<u8>,
    ) -> Option<ProcInfo> {
        let dir = self.proc_root.join(pid.to_string());
        if let Err(e) = procfs::read_into(&dir.join("cmdline"), buf) {
            tracing::debug!(pid, err = %e, "cmdline unreadable; process skipped");
            return None;
        }
        let argv = procfs::parse_cmdline(buf);
        let status = std::fs::read_to_string(dir.join("status"))
            .map(|s| procfs::parse_status(&s))
            .unwrap_or_default();
        let username = status
            .euid
            .map(|u| self.username(st, u))
            .unwrap_or_default();
        let cgroups = if self.matchers.needs_cgroups {
            std::fs::read_to_string(dir.join("cgroup"))
                .map(|s| procfs::parse_cgroups(&s))
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let ticks = self.ticks as u64;
        let start_secs = btime + stat.starttime / ticks.max(1);
        let frac = (stat.starttime % ticks.max(1)) * 100 / ticks.max(1);
        Some(ProcInfo {
            pid,
            comm: stat.comm.clone(),
            argv,
            username,
            start_time: go_time_string(start_secs, frac),
            cgroups,
        })
    }

    fn username(&self, st: &mut State, uid: u32) -> String {
        if !st.users.contains_key(&uid) && !st.users_loaded {
            if let Ok(t) = std::fs::read_to_string(&self.passwd) {
                st.users = procfs::parse_passwd(&t);
            }
            st.users_loaded = true;
        }
        st.users
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }

    /// Reads a tracked process into its group's gauges and deltas; returns
    /// the number of partial errors (files that could not be read).
    #[allow(clippy::too_many_arguments)]
    fn read_tracked(
        &self,
        pid: u32,
        stat: &Stat,
        t: &mut Tracked,
        btime: u64,
        g: &mut Gauges,
        d: &mut Counts,
        buf: &mut Vec<u8>,
    ) -> u64 {
        let dir = self.proc_root.join(pid.to_string());
        let mut partial = 0;
        let status = match std::fs::read_to_string(dir.join("status")) {
            Ok(s) => procfs::parse_status(&s),
            Err(_) => {
                partial += 1;
                Status::default()
            }
        };
        let io = std::fs::read_to_string(dir.join("io"))
            .ok()
            .and_then(|s| procfs::parse_io(&s));
        if io.is_none() {
            partial += 1;
        }
        let counts = Counts::of(stat, &status, io);
        if !t.fresh {
            d.add(&counts.delta(&t.last));
        }
        t.fresh = false;
        t.last = counts;
        g.procs += 1;
        g.resident += (stat.rss_pages.max(0) as u64).saturating_mul(self.page);
        g.virt += stat.vsize;
        g.swapped += status.vm_swap_kb.saturating_mul(1024);
        g.threads += stat.num_threads;
        g.states[state_index(stat.state)] += 1;
        let start = btime + stat.starttime / (self.ticks as u64).max(1);
        g.oldest = Some(g.oldest.map_or(start, |o| o.min(start)));
        match procfs::count_fds(&dir.join("fd")) {
            Some(n) => {
                g.fds += n;
                if let Some(lim) = std::fs::read_to_string(dir.join("limits"))
                    .ok()
                    .and_then(|s| procfs::parse_fd_limit(&s))
                    .filter(|l| *l > 0)
                {
                    g.worst_fd_ratio = g.worst_fd_ratio.max(n as f64 / lim as f64);
                }
            }
            None => partial += 1,
        }
        if self.opts.smaps {
            let ok = procfs::read_into(&dir.join("smaps_rollup"), buf).is_ok()
                || procfs::read_into(&dir.join("smaps"), buf).is_ok();
            if ok {
                let (pss, swap_pss) = procfs::parse_smaps(buf);
                g.pss += pss;
                g.swap_pss += swap_pss;
            } else {
                partial += 1;
            }
        }
        // The process's own wchan is reported with or without threads.
        if let Some(w) = read_wchan(&dir) {
            *g.wchans.entry(w).or_default() += 1;
        }
        // Threads are read with or without --collector.processes.threads
        // (their states and wchans count, as in process-exporter); the flag
        // only hides the thread_* families.
        if stat.num_threads > 1 {
            self.read_threads(&dir, t, g, buf);
        } else {
            t.threads.clear();
        }
        partial
    }

    fn read_threads(&self, dir: &Path, t: &mut Tracked, g: &mut Gauges, buf: &mut Vec<u8>) {
        let task = dir.join("task");
        let tids = procfs::list_ids(&task);
        let mut next: HashMap<u32, (u64, Counts)> = HashMap::with_capacity(tids.len());
        for tid in tids {
            let tdir = task.join(tid.to_string());
            if procfs::read_into(&tdir.join("stat"), buf).is_err() {
                continue; // thread exited meanwhile
            }
            let Some(ts) = procfs::parse_stat(buf) else {
                continue;
            };
            let status = std::fs::read_to_string(tdir.join("status"))
                .map(|s| procfs::parse_status(&s))
                .unwrap_or_default();
            let io = std::fs::read_to_string(tdir.join("io"))
                .ok()
                .and_then(|s| procfs::parse_io(&s));
            let counts = Counts::of(&ts, &status, io);
            let delta = match t.threads.get(&tid) {
                Some((start, prev)) if *start == ts.starttime => counts.delta(prev),
                _ => Counts::default(),
            };
            next.insert(tid, (ts.starttime, counts));
            g.states[state_index(ts.state)] += 1;
            if let Some(w) = read_wchan(&tdir) {
                *g.wchans.entry(w).or_default() += 1;
            }
            let e = g.thread_names.entry(ts.comm).or_default();
            e.0 += 1;
            e.1.add(&delta);
        }
        t.threads = next;
    }

    fn write(&self, out: &mut MetricSet) {
        let st = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let empty = Gauges::default();
        let tk = self.ticks;
        let p = "namedprocess_namegroup_";
        macro_rules! fam {
            ($n:expr, $h:expr, $k:expr) => {
                out.family(&format!("{p}{}", $n), $h, $k)
            };
        }
        use MetricType::{Counter, Gauge};
        for (name, acc) in &st.accum {
            let g = st.last.get(name).unwrap_or(&empty);
            let gn: &str = name;
            let l = [("groupname", gn)];
            fam!("num_procs", "number of processes in this group", Gauge).add(&l, g.procs as f64);
            let f = fam!("cpu_seconds_total", "Cpu user usage in seconds", Counter);
            f.add(
                &[("groupname", gn), ("mode", "user")],
                acc.utime as f64 / tk,
            );
            f.add(
                &[("groupname", gn), ("mode", "system")],
                acc.stime as f64 / tk,
            );
            fam!(
                "read_bytes_total",
                "number of bytes read by this group",
                Counter
            )
            .add(&l, acc.read as f64);
            fam!(
                "write_bytes_total",
                "number of bytes written by this group",
                Counter
            )
            .add(&l, acc.write as f64);
            fam!("major_page_faults_total", "Major page faults", Counter)
                .add(&l, acc.majflt as f64);
            fam!("minor_page_faults_total", "Minor page faults", Counter)
                .add(&l, acc.minflt as f64);
            let f = fam!("context_switches_total", "Context switches", Counter);
            f.add(
                &[("groupname", gn), ("ctxswitchtype", "voluntary")],
                acc.vol as f64,
            );
            f.add(
                &[("groupname", gn), ("ctxswitchtype", "nonvoluntary")],
                acc.nonvol as f64,
            );
            let f = fam!("memory_bytes", "number of bytes of memory in use", Gauge);
            f.add(
                &[("groupname", gn), ("memtype", "resident")],
                g.resident as f64,
            );
            f.add(&[("groupname", gn), ("memtype", "virtual")], g.virt as f64);
            f.add(
                &[("groupname", gn), ("memtype", "swapped")],
                g.swapped as f64,
            );
            if self.opts.smaps {
                f.add(
                    &[("groupname", gn), ("memtype", "proportionalResident")],
                    g.pss as f64,
                );
                f.add(
                    &[("groupname", gn), ("memtype", "proportionalSwapped")],
                    g.swap_pss as f64,
                );
            }
            fam!(
                "open_filedesc",
                "number of open file descriptors for this group",
                Gauge
            )
            .add(&l, g.fds as f64);
            fam!(
                "worst_fd_ratio",
                "the worst (closest to 1) ratio between open fds and max fds among all procs in this group",
                Gauge
            )
            .add(&l, g.worst_fd_ratio);
            fam!(
                "oldest_start_time_seconds",
                "start time in seconds since 1970/01/01 of oldest process in group",
                Gauge
            )
            .add(&l, g.oldest.map_or(GO_ZERO_TIME, |s| s as f64));
            fam!("num_threads", "Number of threads", Gauge).add(&l, g.threads as f64);
            let f = fam!(
                "states",
                "Number of processes in states Running, Sleeping, Waiting, Zombie, or Other",
                Gauge
            );
            for (i, s) in STATES.iter().enumerate() {
                f.add(&[("groupname", gn), ("state", s)], g.states[i] as f64);
            }
            let f = fam!(
                "threads_wchan",
                "Number of threads in this group waiting on each wchan",
                Gauge
            );
            for (w, n) in &g.wchans {
                f.add(&[("groupname", gn), ("wchan", w)], *n as f64);
            }
            if !self.opts.threads {
                continue;
            }
            for (tn, (n, c)) in &g.thread_names {
                let tl = [("groupname", gn), ("threadname", tn.as_str())];
                fam!(
                    "thread_count",
                    "Number of threads in this group with same threadname",
                    Gauge
                )
                .add(&tl, *n as f64);
                let f = fam!(
                    "thread_cpu_seconds_total",
                    "Cpu user/system usage in seconds",
                    Counter
                );
                f.add(&[tl[0], tl[1], ("mode", "user")], c.utime as f64 / tk);
                f.add(&[tl[0], tl[1], ("mode", "system")], c.stime as f64 / tk);
                let f = fam!(
                    "thread_io_bytes_total",
                    "number of bytes read/written by these threads",
                    Counter
                );
                f.add(&[tl[0], tl[1], ("iomode", "read")], c.read as f64);
                f.add(&[tl[0], tl[1], ("iomode", "write")], c.write as f64);
                fam!(
                    "thread_major_page_faults_total",
                    "Major page faults for these threads",
                    Counter
                )
                .add(&tl, c.majflt as f64);
                fam!(
                    "thread_minor_page_faults_total",
                    "Minor page faults for these threads",
                    Counter
                )
                .add(&tl, c.minflt as f64);
                let f = fam!(
                    "thread_context_switches_total",
                    "Context switches for these threads",
                    Counter
                );
                f.add(
                    &[tl[0], tl[1], ("ctxswitchtype", "voluntary")],
                    c.vol as f64,
                );
                f.add(
                    &[tl[0], tl[1], ("ctxswitchtype", "nonvoluntary")],
                    c.nonvol as f64,
                );
            }
        }
        out.counter(
            "namedprocess_scrape_errors",
            "general scrape errors: no proc metrics collected during a cycle",
            &[],
            st.scrape_errors as f64,
        );
        out.counter(
            "namedprocess_scrape_partial_errors",
            "incremented each time a tracked proc's metrics collection fails partially, e.g. unreadable I/O stats",
            &[],
            st.partial_errors as f64,
        );
        out.counter(
            "namedprocess_scrape_procread_errors",
            "incremented each time a proc's metrics collection fails",
            &[],
            st.procread_errors as f64,
        );
    }
}

/// A task's wchan symbol; `None` for a running task ("0") or when unreadable.
fn read_wchan(dir: &Path) -> Option<String> {
    let w = std::fs::read_to_string(dir.join("wchan")).ok()?;
    let w = w.trim();
    if w.is_empty() || w == "0" {
        None
    } else {
        Some(w.to_owned())
    }
}

impl Collector for Processes {
    fn update(&self, _ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        self.cycle();
        self.write(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running test process and its threads, read through the real /proc.
    #[test]
    fn tracks_own_process_and_accumulates() {
        let me = std::fs::read_to_string("/proc/self/stat").unwrap();
        let comm = procfs::parse_stat(me.as_bytes()).unwrap().comm;
        let cfg = format!("process_names:\n- comm: ['{comm}']\n  name: me\n");
        let m = Matchers::parse(Path::new("t.yml"), &cfg).unwrap();
        let opts = Options {
            children: true,
            threads: true,
            smaps: true,
        };
        let c = Processes::new(
            m,
            opts,
            PathBuf::from("/proc"),
            PathBuf::from("/etc/passwd"),
        );
        c.cycle();
        // Burn a little CPU, then look again: the counter must have grown.
        let t0 = std::time::Instant::now();
        let mut x = 0u64;
        while t0.elapsed() < std::time::Duration::from_millis(100) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        c.cycle();
        let mut out = MetricSet::new();
        c.write(&mut out);
        let text = out.encode_text();
        assert!(
            text.contains("namedprocess_namegroup_num_procs{groupname=\"me\"} 1"),
            "{text}"
        );
        let cpu: f64 = text
            .lines()
            .filter(|l| l.starts_with("namedprocess_namegroup_cpu_seconds_total{groupname=\"me\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(cpu > 0.0, "{text}");
    }

    #[test]
    fn bool_flags_both_styles() {
        let cmd = clap::Command::new("t").args(args());
        let m = cmd
            .try_get_matches_from([
                "t",
                "--collector.processes.children=false",
                "--no-collector.processes.threads",
            ])
            .unwrap();
        let ctx = BuildCtx {
            roots: Arc::new(crate::roots::FsRoots::default()),
            matches: &m,
        };
        assert!(!flag_or_true(&ctx, "collector.processes.children"));
        assert!(!flag_or_true(&ctx, "collector.processes.threads"));
        assert!(flag_or_true(&ctx, "collector.processes.gather-smaps"));
    }

    #[test]
    fn empty_proc_root_is_an_error_count_not_a_failure() {
        let m = Matchers::parse(Path::new("t.yml"), config::DEFAULT_CONFIG).unwrap();
        let opts = Options {
            children: true,
            threads: true,
            smaps: true,
        };
        let c = Processes::new(
            m,
            opts,
            PathBuf::from("/nonexistent"),
            PathBuf::from("/nonexistent"),
        );
        c.cycle();
        let mut out = MetricSet::new();
        c.write(&mut out);
        assert!(out.encode_text().contains("namedprocess_scrape_errors 1"));
    }
}
