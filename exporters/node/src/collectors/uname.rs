//! uname: `uname(2)` as `node_uname_info`.
// System calls (libc) without a safe std equivalent; each block says why it is sound.
#![allow(unsafe_code)]

use vigie_common::MetricSet;

use super::{no_args, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "uname",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Uname)),
    }
}

struct Uname;

fn field(raw: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Collector for Uname {
    fn update(&self, _ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        // SAFETY: utsname is plain data; uname fills it or fails.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        if unsafe { libc::uname(&mut u) } != 0 {
            return Err(CollectError::Other(format!(
                "uname: {}",
                std::io::Error::last_os_error()
            )));
        }
        out.gauge(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
            &[
                ("sysname", &field(&u.sysname)),
                ("release", &field(&u.release)),
                ("version", &field(&u.version)),
                ("machine", &field(&u.machine)),
                ("nodename", &field(&u.nodename)),
                ("domainname", &field(&u.domainname)),
            ],
            1.0,
        );
        Ok(())
    }
}
