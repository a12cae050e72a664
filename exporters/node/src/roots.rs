//! Where the collectors read from: `--path.procfs`, `--path.sysfs`,
//! `--path.rootfs`, `--path.udev.data` (fixture trees in tests).

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct FsRoots {
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub rootfs: PathBuf,
    pub udev_data: PathBuf,
}

impl Default for FsRoots {
    fn default() -> Self {
        FsRoots {
            procfs: PathBuf::from("/proc"),
            sysfs: PathBuf::from("/sys"),
            rootfs: PathBuf::from("/"),
            udev_data: PathBuf::from("/run/udev/data"),
        }
    }
}

impl FsRoots {
    /// A path under the proc root: `proc("net/dev")`.
    pub fn proc(&self, rel: &str) -> PathBuf {
        self.procfs.join(rel)
    }

    /// A path under the sys root: `sys("class/net")`.
    pub fn sys(&self, rel: &str) -> PathBuf {
        self.sysfs.join(rel)
    }

    /// A host path seen through `--path.rootfs` (for mount points).
    pub fn root(&self, abs: &Path) -> PathBuf {
        match abs.strip_prefix("/") {
            Ok(rel) => self.rootfs.join(rel),
            Err(_) => self.rootfs.join(abs),
        }
    }

    /// Strips the rootfs prefix from a mount point, as node_exporter does
    /// when `--path.rootfs` is set.
    pub fn strip_root(&self, mount: &str) -> String {
        if self.rootfs == Path::new("/") {
            return mount.to_owned();
        }
        let root = self.rootfs.to_string_lossy();
        match mount.strip_prefix(root.trim_end_matches('/')) {
            Some("") => "/".to_owned(),
            Some(rest) if rest.starts_with('/') => rest.to_owned(),
            _ => mount.to_owned(),
        }
    }
}
