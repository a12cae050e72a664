//! filesystem: mounts from `/proc/1/mounts` (fallback `/proc/self/mounts`)
//! and `statfs(2)` per kept mount point.
//!
//! statfs runs on a worker thread with a timeout
//! (`--collector.filesystem.mount-timeout`, never past the scrape deadline).
//! A mount point whose statfs does not answer is marked stuck: reported with
//! `node_filesystem_device_error 1` and skipped until the pending call
//! returns. The stuck call cannot be cancelled (the kernel holds it), so
//! its worker is abandoned and a fresh one serves the other mounts: at
//! most one blocked thread per stuck mount point.
// System calls (libc) without a safe std equivalent; each block says why it is sound.
#![allow(unsafe_code)]

use std::collections::HashSet;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use regex::Regex;
use vigie_common::MetricSet;

use super::{str_arg, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

const MP_EXCLUDE: &str = "collector.filesystem.mount-points-exclude";
const OLD_MP: &str = "collector.filesystem.ignored-mount-points";
const FS_EXCLUDE: &str = "collector.filesystem.fs-types-exclude";
const OLD_FS: &str = "collector.filesystem.ignored-fs-types";
const TIMEOUT: &str = "collector.filesystem.mount-timeout";
/// Debian's default (adds run, mnt, media to upstream's).
const DEFAULT_MP: &str =
    "^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
const DEFAULT_FS: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";

pub fn spec() -> Spec {
    Spec {
        name: "filesystem",
        default_enabled: true,
        args: || {
            vec![
                str_arg(
                    MP_EXCLUDE,
                    Some(DEFAULT_MP),
                    "Regexp of mount points to exclude for filesystem collector.",
                ),
                str_arg(
                    OLD_MP,
                    None,
                    "DEPRECATED: Use collector.filesystem.mount-points-exclude",
                )
                .hide(true),
                str_arg(
                    FS_EXCLUDE,
                    Some(DEFAULT_FS),
                    "Regexp of filesystem types to exclude for filesystem collector.",
                ),
                str_arg(
                    OLD_FS,
                    None,
                    "DEPRECATED: Use collector.filesystem.fs-types-exclude",
                )
                .hide(true),
                str_arg(
                    TIMEOUT,
                    Some("5s"),
                    "how long to wait for a mount to respond before marking it as stale",
                )
                .hide(true),
            ]
        },
        build: |ctx: &BuildCtx| {
            let pick = |new: &'static str, old: &'static str| {
                if ctx.given(old) && !ctx.given(new) {
                    old
                } else {
                    new
                }
            };
            let timeout = ctx
                .string(TIMEOUT)
                .map(|s| vigie_common::config::PromDuration::parse(&s).map(|d| d.0))
                .transpose()
                .map_err(|e| format!("--{TIMEOUT}: {e}"))?
                .unwrap_or(Duration::from_secs(5));
            Ok(Box::new(Filesystem {
                mp_exclude: ctx.regex(pick(MP_EXCLUDE, OLD_MP))?,
                fs_exclude: ctx.regex(pick(FS_EXCLUDE, OLD_FS))?,
                stat: StatPool::new(timeout, statfs),
            }))
        },
    }
}

struct Filesystem {
    mp_exclude: Option<Regex>,
    fs_exclude: Option<Regex>,
    stat: StatPool,
}

/// One line of the mounts table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    pub options: String,
}

/// Parses a mounts table (fstab(5) escapes `\040` and `\011` undone).
pub fn parse_mounts(text: &str) -> Result<Vec<Mount>, usize> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f.len() < 4 {
            return Err(i + 1);
        }
        out.push(Mount {
            device: f[0].to_owned(),
            mount_point: f[1].replace("\\040", " ").replace("\\011", "\t"),
            fs_type: f[2].to_owned(),
            options: f[3].to_owned(),
        });
    }
    Ok(out)
}

/// What statfs reports, in bytes and inodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FsStats {
    pub size: f64,
    pub free: f64,
    pub avail: f64,
    pub files: f64,
    pub files_free: f64,
}

pub type StatFn = fn(&Path) -> std::io::Result<FsStats>;

fn statfs(path: &Path) -> std::io::Result<FsStats> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: c is NUL-terminated; buf is plain data filled by the kernel.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut buf) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let bsize = buf.f_bsize as f64;
    Ok(FsStats {
        size: buf.f_blocks as f64 * bsize,
        free: buf.f_bfree as f64 * bsize,
        avail: buf.f_bavail as f64 * bsize,
        files: buf.f_files as f64,
        files_free: buf.f_ffree as f64,
    })
}

type Reply = std::io::Result<FsStats>;
struct Job {
    path: PathBuf,
    key: String,
    reply: SyncSender<Reply>,
}

/// A statfs worker thread and the set of stuck mount points.
pub struct StatPool {
    timeout: Duration,
    stat: StatFn,
    worker: Mutex<Option<Sender<Job>>>,
    stuck: Arc<Mutex<HashSet<String>>>,
}

/// The result of one statfs through the pool.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Ok(FsStats),
    Failed(String),
    /// Timed out now or on an earlier scrape and not answered yet.
    Stuck,
}

impl StatPool {
    pub fn new(timeout: Duration, stat: StatFn) -> Self {
        StatPool {
            timeout,
            stat,
            worker: Mutex::new(None),
            stuck: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    fn spawn(&self) -> Option<Sender<Job>> {
        let (tx, rx): (Sender<Job>, Receiver<Job>) = mpsc::channel();
        let stuck = Arc::clone(&self.stuck);
        let stat = self.stat;
        std::thread::Builder::new()
            .name("statfs".into())
            .spawn(move || {
                for job in rx {
                    let r = stat(&job.path);
                    // Answered: no longer stuck (if it was).
                    if let Ok(mut s) = stuck.lock() {
                        if s.remove(&job.key) {
                            tracing::info!(mountpoint = job.key, "mount point answers again");
                        }
                    }
                    let _ = job.reply.try_send(r);
                }
            })
            .ok()?;
        Some(tx)
    }

    pub fn is_stuck(&self, key: &str) -> bool {
        self.stuck.lock().map(|s| s.contains(key)).unwrap_or(false)
    }

    /// statfs of `path` (mount point `key`), waiting until the mount
    /// timeout or `deadline`, whichever is first.
    pub fn stat(&self, path: &Path, key: &str, deadline: Instant) -> Outcome {
        if self.is_stuck(key) {
            return Outcome::Stuck;
        }
        let Ok(mut worker) = self.worker.lock() else {
            return Outcome::Failed("statfs worker lock poisoned".into());
        };
        if worker.is_none() {
            *worker = self.spawn();
        }
        let Some(tx) = worker.as_ref() else {
            return Outcome::Failed("cannot start statfs worker".into());
        };
        let (rtx, rrx) = mpsc::sync_channel(1);
        let job = Job {
            path: path.to_owned(),
            key: key.to_owned(),
            reply: rtx,
        };
        if tx.send(job).is_err() {
            *worker = None;
            return Outcome::Failed("statfs worker gone".into());
        }
        let wait = self
            .timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        match rrx.recv_timeout(wait) {
            Ok(Ok(s)) => Outcome::Ok(s),
            Ok(Err(e)) => Outcome::Failed(e.to_string()),
            Err(_) => {
                tracing::error!(
                    mountpoint = key,
                    "Mount point timed out, it is being labeled as stuck and will not be monitored"
                );
                if let Ok(mut s) = self.stuck.lock() {
                    s.insert(key.to_owned());
                }
                // The worker is blocked in the kernel: abandon it.
                *worker = None;
                Outcome::Stuck
            }
        }
    }
}

impl Filesystem {
    fn mounts(&self, ctx: &ScrapeCtx) -> Result<Vec<Mount>, CollectError> {
        let p1 = ctx.roots.proc("1/mounts");
        let text = match ctx.read(&p1) {
            Ok(t) => t,
            Err(_) => ctx.read(&ctx.roots.proc("self/mounts"))?,
        };
        parse_mounts(&text).map_err(|l| CollectError::parse(&p1, l, "malformed mount line"))
    }
}

impl Collector for Filesystem {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let mut seen = HashSet::new();
        for mut m in self.mounts(ctx)? {
            m.mount_point = ctx.roots.strip_root(&m.mount_point);
            if matches!(&self.mp_exclude, Some(re) if re.is_match(&m.mount_point)) {
                continue;
            }
            if matches!(&self.fs_exclude, Some(re) if re.is_match(&m.fs_type)) {
                continue;
            }
            if !seen.insert(m.clone()) {
                continue;
            }
            let labels = [
                ("device", m.device.as_str()),
                ("fstype", m.fs_type.as_str()),
                ("mountpoint", m.mount_point.as_str()),
            ];
            let err_help =
                "Whether an error occurred while getting statistics for the given device.";
            let path = ctx.roots.root(Path::new(&m.mount_point));
            let s = match self.stat.stat(&path, &m.mount_point, ctx.deadline) {
                Outcome::Ok(s) => s,
                Outcome::Failed(e) => {
                    tracing::debug!(
                        mountpoint = m.mount_point,
                        err = e,
                        "Error on statfs() system call"
                    );
                    out.gauge("node_filesystem_device_error", err_help, &labels, 1.0);
                    continue;
                }
                Outcome::Stuck => {
                    tracing::debug!(
                        mountpoint = m.mount_point,
                        "Mount point is in an unresponsive state"
                    );
                    out.gauge("node_filesystem_device_error", err_help, &labels, 1.0);
                    continue;
                }
            };
            let ro = m.options.split(',').any(|o| o == "ro");
            out.gauge(
                "node_filesystem_size_bytes",
                "Filesystem size in bytes.",
                &labels,
                s.size,
            );
            out.gauge(
                "node_filesystem_free_bytes",
                "Filesystem free space in bytes.",
                &labels,
                s.free,
            );
            out.gauge(
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
                &labels,
                s.avail,
            );
            out.gauge(
                "node_filesystem_files",
                "Filesystem total file nodes.",
                &labels,
                s.files,
            );
            out.gauge(
                "node_filesystem_files_free",
                "Filesystem total free file nodes.",
                &labels,
                s.files_free,
            );
            out.gauge(
                "node_filesystem_readonly",
                "Filesystem read-only status.",
                &labels,
                if ro { 1.0 } else { 0.0 },
            );
            out.gauge("node_filesystem_device_error", err_help, &labels, 0.0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mounts() {
        let m = parse_mounts("/dev/vda / ext4 rw 0 0\n/dev/x /a\\040b ext4 ro 0 0\n\n").unwrap();
        assert_eq!(m[1].mount_point, "/a b");
        assert!(parse_mounts("/dev/vda /\n").is_err());
    }

    fn slow_stat(p: &Path) -> std::io::Result<FsStats> {
        if p.ends_with("hang") {
            std::thread::sleep(Duration::from_millis(600));
        }
        Ok(FsStats {
            size: 1.0,
            free: 1.0,
            avail: 1.0,
            files: 1.0,
            files_free: 1.0,
        })
    }

    #[test]
    fn a_hanging_statfs_is_marked_stuck_then_recovers() {
        let pool = StatPool::new(Duration::from_millis(100), slow_stat);
        let far = Instant::now() + Duration::from_secs(10);
        let t = Instant::now();
        assert_eq!(
            pool.stat(Path::new("/x/hang"), "/hang", far),
            Outcome::Stuck
        );
        assert!(t.elapsed() < Duration::from_millis(400));
        // Other mounts keep working on a fresh worker, the stuck one is skipped at once.
        assert!(matches!(
            pool.stat(Path::new("/x/ok"), "/ok", far),
            Outcome::Ok(_)
        ));
        let t = Instant::now();
        assert_eq!(
            pool.stat(Path::new("/x/hang"), "/hang", far),
            Outcome::Stuck
        );
        assert!(t.elapsed() < Duration::from_millis(50));
        // Once the blocked call returns, the mount is measured again.
        std::thread::sleep(Duration::from_millis(700));
        assert!(!pool.is_stuck("/hang"));
        // The deadline bounds the wait too.
        let t = Instant::now();
        let pool = StatPool::new(Duration::from_secs(5), slow_stat);
        assert_eq!(
            pool.stat(
                Path::new("/y/hang"),
                "/y",
                Instant::now() + Duration::from_millis(50)
            ),
            Outcome::Stuck
        );
        assert!(t.elapsed() < Duration::from_millis(300));
    }

    #[test]
    fn real_statfs() {
        assert!(statfs(Path::new("/")).unwrap().size > 0.0);
        assert!(statfs(Path::new("/nonexistent-vigie")).is_err());
    }
}
