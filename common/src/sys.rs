//! The few system calls that the standard library does not wrap.
#![allow(unsafe_code)]

/// Raises the soft open-file limit to the hard limit, as the Go runtime does
/// at start, so many concurrent scrapes or probes do not run out of fds.
/// Returns the new soft limit.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let new = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        return Ok(new.rlim_cur);
    }
    Ok(lim.rlim_cur)
}

/// Memory page size in bytes.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
}

/// Clock ticks per second (USER_HZ), the unit of /proc/*/stat times.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as u64
    } else {
        100
    }
}

/// Effective user id of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and has no preconditions.
    unsafe { libc::geteuid() }
}

/// The listening sockets systemd passed under socket activation: fds 3 to
/// 3+LISTEN_FDS-1, when LISTEN_PID names this process (sd_listen_fds(3)).
pub fn systemd_listeners() -> Result<Vec<std::net::TcpListener>, String> {
    use std::os::fd::FromRawFd;
    const FIRST_FD: i32 = 3;
    let pid = std::env::var("LISTEN_PID").map_err(|_| {
        "no socket activation file descriptors found (LISTEN_PID is not set: start the exporter from a systemd .socket unit)".to_owned()
    })?;
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Err(format!(
            "no socket activation file descriptors found (LISTEN_PID={pid} is another process)"
        ));
    }
    let n: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| (1..=1024).contains(n))
        .ok_or(
            "no socket activation file descriptors found (LISTEN_FDS is not a positive number)",
        )?;
    let mut out = Vec::new();
    for fd in FIRST_FD..FIRST_FD + n {
        if !is_listening_stream_socket(fd) {
            return Err(format!(
                "socket activation fd {fd} is not a listening stream socket (ListenStream= in the .socket unit)"
            ));
        }
        // SAFETY: systemd hands these descriptors to this process alone
        // (LISTEN_PID checked above) and nothing else here owns them.
        let l = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        // SAFETY: fcntl on a descriptor we now own.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        l.set_nonblocking(true)
            .map_err(|e| format!("socket activation fd {fd}: {e}"))?;
        out.push(l);
    }
    Ok(out)
}

fn is_listening_stream_socket(fd: i32) -> bool {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `v`; a bad fd
    // only yields an error.
    let ok = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    } == 0;
    ok && v == 1
}
