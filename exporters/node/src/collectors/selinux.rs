//! selinux: whether SELinux is enabled and its configured / current modes.
//!
//! Like node_exporter (which uses the go-selinux library), this looks at
//! the running host itself, not at `--path.procfs`/`--path.sysfs`: the
//! selinuxfs mount of this process's mount namespace, its
//! `/proc/self/attr/current` label and `/etc/selinux/config`.

use std::path::{Path, PathBuf};

use vigie_common::MetricSet;

use super::{no_args, read_attr, read_file, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "selinux",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Selinux)),
    }
}

struct Selinux;

/// The mount point of the first `selinuxfs` in a mountinfo text.
fn selinuxfs_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split_whitespace().next()? != "selinuxfs" {
            return None;
        }
        pre.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// `SELINUX=` of the config file: enforcing 1, permissive 0, else -1
/// (go-selinux's Enforcing/Permissive/Disabled).
fn config_mode(config: &str) -> f64 {
    let mode = config.lines().find_map(|l| {
        let (k, v) = l.trim().split_once('=')?;
        (k.trim() == "SELINUX").then(|| v.trim().trim_matches('"').to_owned())
    });
    match mode.as_deref() {
        Some("enforcing") => 1.0,
        Some("permissive") => 0.0,
        _ => -1.0,
    }
}

fn enabled_mount() -> Option<PathBuf> {
    let mountinfo = read_file(Path::new("/proc/self/mountinfo")).ok()?;
    let mnt = selinuxfs_mount(&mountinfo)?;
    let label = read_file(Path::new("/proc/self/attr/current")).ok()?;
    let label = label.trim_end_matches(['\n', '\0']);
    (label != "kernel").then_some(mnt)
}

impl Collector for Selinux {
    fn update(&self, _ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let Some(mnt) = enabled_mount() else {
            out.gauge(
                "node_selinux_enabled",
                "SELinux is enabled, 1 is true, 0 is false",
                &[],
                0.0,
            );
            return Ok(());
        };
        let enforce_path = mnt.join("enforce");
        let current: f64 = read_attr(&enforce_path)?
            .parse()
            .map_err(|_| CollectError::parse(&enforce_path, 1, "not a number"))?;
        let config = read_file(Path::new("/etc/selinux/config")).unwrap_or_default();
        out.gauge(
            "node_selinux_enabled",
            "SELinux is enabled, 1 is true, 0 is false",
            &[],
            1.0,
        );
        out.gauge(
            "node_selinux_config_mode",
            "Configured SELinux enforcement mode",
            &[],
            config_mode(&config),
        );
        out.gauge(
            "node_selinux_current_mode",
            "Current SELinux enforcement mode",
            &[],
            current,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_and_config() {
        let mi = "22 1 0:21 / /proc rw - proc proc rw\n30 22 0:27 / /sys/fs/selinux rw,relatime - selinuxfs selinuxfs rw\n";
        assert_eq!(selinuxfs_mount(mi), Some(PathBuf::from("/sys/fs/selinux")));
        assert_eq!(selinuxfs_mount("garbage\n - \n"), None);
        assert_eq!(config_mode("# c\nSELINUX=enforcing\n"), 1.0);
        assert_eq!(config_mode("SELINUX=permissive"), 0.0);
        assert_eq!(config_mode(""), -1.0);
    }
}
