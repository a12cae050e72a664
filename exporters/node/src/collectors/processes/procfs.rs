//! Small /proc/<pid> readers for the processes collector. Each returns
//! `None` when the file is gone or unreadable (process exited, permission
//! denied): the caller skips or counts a partial error, never fails.

use std::io::Read;
use std::path::Path;

/// Largest /proc/<pid> file read (smaps of a big JVM is a few MB).
const MAX_PROC_FILE: u64 = 32 * 1024 * 1024;

/// Reads a file into `buf` (cleared first), bounded.
pub fn read_into(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    let f = std::fs::File::open(path)?;
    f.take(MAX_PROC_FILE).read_to_end(buf)?;
    Ok(())
}

/// The fields of /proc/<pid>/stat (or task/<tid>/stat) we use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stat {
    pub comm: String,
    pub state: u8,
    pub ppid: u32,
    pub minflt: u64,
    pub majflt: u64,
    pub utime: u64,
    pub stime: u64,
    pub num_threads: u64,
    pub starttime: u64,
    pub vsize: u64,
    pub rss_pages: i64,
}

/// Parses stat; the comm may hold spaces and parentheses, so the fields
/// start after the last ')'.
pub fn parse_stat(text: &[u8]) -> Option<Stat> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let comm = String::from_utf8_lossy(&text[open + 1..close]).into_owned();
    let rest = std::str::from_utf8(text.get(close + 1..)?).ok()?;
    // f[0] is field 3 (state).
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let num = |i: usize| -> Option<u64> { f.get(i)?.parse().ok() };
    Some(Stat {
        comm,
        state: *f.first()?.as_bytes().first()?,
        ppid: f.get(1)?.parse().ok()?,
        minflt: num(7)?,
        majflt: num(9)?,
        utime: num(11)?,
        stime: num(12)?,
        num_threads: num(17)?,
        starttime: num(19)?,
        vsize: num(20)?,
        rss_pages: f.get(21)?.parse().ok()?,
    })
}

/// The fields of /proc/<pid>/status we use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    pub euid: Option<u32>,
    pub vm_swap_kb: u64,
    pub voluntary: u64,
    pub nonvoluntary: u64,
}

pub fn parse_status(text: &str) -> Status {
    let mut s = Status::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let first = || v.split_ascii_whitespace().next();
        match k {
            "Uid" => {
                s.euid = v
                    .split_ascii_whitespace()
                    .nth(1)
                    .and_then(|x| x.parse().ok())
            }
            "VmSwap" => s.vm_swap_kb = first().and_then(|x| x.parse().ok()).unwrap_or(0),
            "voluntary_ctxt_switches" => {
                s.voluntary = first().and_then(|x| x.parse().ok()).unwrap_or(0)
            }
            "nonvoluntary_ctxt_switches" => {
                s.nonvoluntary = first().and_then(|x| x.parse().ok()).unwrap_or(0)
            }
            _ => {}
        }
    }
    s
}

/// `read_bytes` and `write_bytes` of /proc/<pid>/io.
pub fn parse_io(text: &str) -> Option<(u64, u64)> {
    let mut r = None;
    let mut w = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("read_bytes:") {
            r = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("write_bytes:") {
            w = v.trim().parse().ok();
        }
    }
    Some((r?, w?))
}

/// Sum of the `Pss:` and `SwapPss:` lines (kB) of smaps or smaps_rollup,
/// in bytes. `Pss_Anon:` and friends are parts of `Pss:`, not added.
pub fn parse_smaps(text: &[u8]) -> (u64, u64) {
    let mut pss = 0u64;
    let mut swap_pss = 0u64;
    for line in text.split(|&b| b == b'\n') {
        let (target, rest) = if let Some(r) = line.strip_prefix(b"Pss:") {
            (&mut pss, r)
        } else if let Some(r) = line.strip_prefix(b"SwapPss:") {
            (&mut swap_pss, r)
        } else {
            continue;
        };
        let kb = std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.split_ascii_whitespace().next())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        *target = target.saturating_add(kb.saturating_mul(1024));
    }
    (pss, swap_pss)
}

/// The soft "Max open files" limit of /proc/<pid>/limits (`None` when
/// unlimited or unreadable).
pub fn parse_fd_limit(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// argv of /proc/<pid>/cmdline (NUL separated, trailing NUL dropped).
pub fn parse_cmdline(raw: &[u8]) -> Vec<String> {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The cgroup paths of /proc/<pid>/cgroup, in file order.
pub fn parse_cgroups(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .map(str::to_owned)
        .collect()
}

/// Number of entries in /proc/<pid>/fd.
pub fn count_fds(dir: &Path) -> Option<u64> {
    let rd = std::fs::read_dir(dir).ok()?;
    Some(rd.filter(|e| e.is_ok()).count() as u64)
}

/// Numeric entries of a /proc or /proc/<pid>/task directory.
pub fn list_ids(dir: &Path) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .collect()
}

/// Boot time (`btime`) of /proc/stat.
pub fn boot_time(proc_root: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(proc_root.join("stat")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// uid -> user name from an /etc/passwd text.
pub fn parse_passwd(text: &str) -> std::collections::HashMap<u32, String> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_comm() {
        let s = b"123 (a) b (c)) S 1 123 123 0 -1 4194560 100 0 2 0 7 3 0 0 20 0 4 0 5000 1000000 50 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let st = parse_stat(s).unwrap();
        assert_eq!(st.comm, "a) b (c)");
        assert_eq!(st.state, b'S');
        assert_eq!(st.ppid, 1);
        assert_eq!((st.minflt, st.majflt, st.utime, st.stime), (100, 2, 7, 3));
        assert_eq!((st.num_threads, st.starttime), (4, 5000));
        assert_eq!((st.vsize, st.rss_pages), (1000000, 50));
        assert!(parse_stat(b"12 (x").is_none());
        assert!(parse_stat(b"").is_none());
        assert!(parse_stat(b"1 (x) S").is_none());
    }

    #[test]
    fn status_io_smaps_limits() {
        let st = parse_status("Name:\tx\nUid:\t1000\t1001\t1000\t1000\nVmSwap:\t  12 kB\nvoluntary_ctxt_switches:\t5\nnonvoluntary_ctxt_switches:\t6\n");
        assert_eq!(st.euid, Some(1001));
        assert_eq!((st.vm_swap_kb, st.voluntary, st.nonvoluntary), (12, 5, 6));
        assert_eq!(
            parse_io("rchar: 1\nread_bytes: 4096\nwrite_bytes: 8192\n"),
            Some((4096, 8192))
        );
        assert_eq!(parse_io("rchar: 1\n"), None);
        let sm = b"Rss: 100 kB\nPss:  10 kB\nPss_Anon: 5 kB\nSwapPss: 2 kB\nPss: 1 kB\n";
        assert_eq!(parse_smaps(sm), (11 * 1024, 2 * 1024));
        let lim = "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n";
        assert_eq!(parse_fd_limit(lim), Some(1024));
        assert_eq!(
            parse_fd_limit(
                "Max open files            unlimited            unlimited            files\n"
            ),
            None
        );
    }

    #[test]
    fn cmdline_cgroups_passwd() {
        assert_eq!(parse_cmdline(b"/bin/a\0-x\0\0"), vec!["/bin/a", "-x", ""]);
        assert!(parse_cmdline(b"").is_empty());
        assert_eq!(
            parse_cgroups("1:cpu:/a\n0::/b:c\n"),
            vec!["/a".to_owned(), "/b:c".to_owned()]
        );
        let pw =
            parse_passwd("root:x:0:0:root:/root:/bin/bash\nbad\nwww-data:x:33:33::/:/bin/false\n");
        assert_eq!(pw.get(&33).map(String::as_str), Some("www-data"));
        assert_eq!(pw.get(&0).map(String::as_str), Some("root"));
    }
}
