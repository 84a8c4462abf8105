//! What std cannot do: waiting for SIGTERM and SIGINT, raising the open files limit, waiting on
//! two sockets at once, and systemd's socket activation. The only user of the libc crate.
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

/// Waits until one of some descriptors can be read from (or has hung up, or failed: a read then
/// says which), or `timeout` passes. `None` leaves a descriptor out. Which ones are ready.
pub fn poll_readable<const N: usize>(
    fds: [Option<std::os::fd::RawFd>; N],
    timeout: std::time::Duration,
) -> io::Result<[bool; N]> {
    let mut entries = fds.map(|fd| libc::pollfd {
        // poll ignores a negative descriptor.
        fd: fd.unwrap_or(-1),
        events: libc::POLLIN,
        revents: 0,
    });
    let millis = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    loop {
        // SAFETY: poll reads and writes the N pollfd structs we own.
        let rc = unsafe { libc::poll(entries.as_mut_ptr(), N as libc::nfds_t, millis) };
        if rc >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(entries.map(|e| e.fd >= 0 && e.revents != 0))
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

    /// Waiting on two sockets: the one with data is named, a hang-up counts, the timeout passes.
    #[test]
    fn poll_names_the_readable_socket() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        use std::time::Duration;
        let (mut a, b) = std::os::unix::net::UnixStream::pair().expect("a pair");
        let (c, d) = std::os::unix::net::UnixStream::pair().expect("a pair");
        let fds = [Some(b.as_raw_fd()), Some(d.as_raw_fd())];
        let short = Duration::from_millis(20);
        assert_eq!(poll_readable(fds, short).expect("polls"), [false, false]);
        a.write_all(b"x").expect("writes");
        assert_eq!(poll_readable(fds, short).expect("polls"), [true, false]);
        drop(c);
        assert_eq!(poll_readable(fds, short).expect("polls"), [true, true]);
        let only_d = [None, Some(d.as_raw_fd())];
        assert_eq!(poll_readable(only_d, short).expect("polls"), [false, true]);
    }

    /// A signal that interrupts the wait (poll fails with EINTR) does not end it with an error:
    /// the relay would drop its connection.
    #[test]
    fn a_signal_during_the_wait_does_not_end_it() {
        use std::os::fd::AsRawFd;
        use std::os::unix::thread::JoinHandleExt;
        use std::time::Duration;
        extern "C" fn nothing(_: libc::c_int) {}
        // SAFETY: a handler that does nothing, for a signal no other test uses; installed
        // without SA_RESTART, so that the signal makes poll fail with EINTR.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = nothing as extern "C" fn(libc::c_int) as libc::sighandler_t;
            assert_eq!(
                libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
                0
            );
        }
        let (_a, b) = std::os::unix::net::UnixStream::pair().expect("a pair");
        let fd = b.as_raw_fd();
        let waiter =
            std::thread::spawn(move || poll_readable([Some(fd)], Duration::from_millis(500)));
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: the thread is alive until joined below. A signal that comes before its poll
        // starts is handled and changes nothing, so the test can only pass then.
        unsafe { libc::pthread_kill(waiter.as_pthread_t() as _, libc::SIGUSR1) };
        let waited = waiter.join().expect("the waiter");
        assert_eq!(waited.expect("no error for EINTR"), [false]);
    }

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
