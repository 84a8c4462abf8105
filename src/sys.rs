//! What std cannot do: waiting for SIGTERM and SIGINT, raising the open files limit, the listen
//! backlog, and systemd's socket activation. The only user of the libc crate.
//!
//! The exporter is often PID 1 of a scratch container. The kernel ignores a signal sent to PID 1 unless PID 1 handles it, so without this ECS would
//! wait out the stop timeout and then SIGKILL the exporter. Instead of a handler (which can do
//! almost nothing safely), both signals are blocked in every thread and one thread waits for them
//! with `sigwait`, then runs ordinary code.

use std::io;

/// The blocked set of termination signals, to be waited for by [`spawn_waiter`].
pub struct Termination(libc::sigset_t);

/// Blocks SIGTERM and SIGINT in the calling thread and so in every thread it starts afterwards.
/// Call it before any thread exists.
pub fn block_termination() -> io::Result<Termination> {
    // SAFETY: sigset_t is plain data that sigemptyset initialises; the calls only read and
    // write the set and this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(Termination(set))
    }
}

/// Starts a thread that calls `on_signal` with the signal's name when one arrives.
pub fn spawn_waiter(
    set: Termination,
    on_signal: impl FnOnce(&'static str) + Send + 'static,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut signal: libc::c_int = 0;
            loop {
                // SAFETY: the set was initialised by `block_termination`; sigwait writes one int.
                let rc = unsafe { libc::sigwait(&set.0, &mut signal) };
                if rc == 0 {
                    break;
                }
            }
            on_signal(if signal == libc::SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            });
        })?;
    Ok(())
}

/// Raises the soft limit of open files to the hard limit (what Go's runtime does at start), and
/// returns the new soft limit.
pub fn raise_fd_limit() -> io::Result<u64> {
    // SAFETY: getrlimit and setrlimit read and write one plain struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(limit.rlim_cur as u64)
    }
}

/// Listens on `listener` with the kernel's largest accept queue (`net.core.somaxconn`, 4096 on
/// current kernels), as Go does, instead of std's 128: a burst of connections past 128 overflowed
/// the queue, and a fresh `/health` waited a second for its SYN to be sent again. Listening again
/// on a listening socket only changes its backlog; a backlog past `somaxconn` is cut to it.
pub fn listen_at_most(listener: &std::net::TcpListener) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: listen(2) on a socket this process owns, with a plain integer.
    if unsafe { libc::listen(listener.as_raw_fd(), i32::MAX) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The listening sockets systemd passed to this process (`LISTEN_PID` is ours, `LISTEN_FDS`
/// of them from descriptor 3 on), as sd_listen_fds(3) hands them over.
pub fn systemd_listeners(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
) -> io::Result<Vec<std::net::TcpListener>> {
    use std::os::fd::FromRawFd;
    let none = || io::Error::other("no socket activation file descriptors found");
    if listen_pid.and_then(|p| p.parse::<u32>().ok()) != Some(std::process::id()) {
        return Err(none());
    }
    let count: i32 = listen_fds.and_then(|n| n.parse().ok()).ok_or_else(none)?;
    if count < 1 {
        return Err(none());
    }
    let mut listeners = Vec::new();
    for fd in 3..3 + count {
        // SAFETY: fstat on a descriptor number only reads; it fails if nothing is open there.
        let open = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK
        };
        if !open {
            return Err(io::Error::other(format!(
                "socket activation descriptor {fd} is not an open socket"
            )));
        }
        // SAFETY: systemd passed this open socket to us and nothing else in the process owns it.
        let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_activation_needs_our_pid_and_a_count() {
        let ours = std::process::id().to_string();
        let none = |pid: Option<&str>, fds: Option<&str>| {
            systemd_listeners(pid, fds)
                .map(|l| l.len())
                .map_err(|e| e.to_string())
        };
        let missing = Err("no socket activation file descriptors found".to_owned());
        assert_eq!(none(None, None), missing);
        assert_eq!(
            none(Some("1"), Some("1")),
            missing,
            "another process's sockets"
        );
        assert_eq!(none(Some(&ours), Some("0")), missing);
        assert_eq!(none(Some(&ours), Some("x")), missing);
    }

    #[test]
    fn the_fd_limit_is_raised_to_the_hard_limit() {
        let soft = raise_fd_limit().expect("raises");
        let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
        // SAFETY: getrlimit writes one plain struct.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert_eq!((limit.rlim_cur as u64, limit.rlim_max as u64), (soft, soft));
    }
}
