//! What std cannot do: waiting for SIGTERM and SIGINT, and raising the open files limit. The
//! only user of the libc crate.
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
                // SAFETY: the set was initialised by `block`; sigwait writes one int.
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

/// Sets TCP_NODELAY on a listening socket; Linux gives it to every connection accepted from it.
/// Without it, a response written in more than one piece (tiny_http writes headers and body
/// through a 1 KiB buffer) waits for the client's delayed ACK: 40 ms per scrape.
pub fn set_nodelay(listener: &std::net::TcpListener) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads one int from a valid pointer for the given length.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server relies on Linux handing the listener's TCP_NODELAY to accepted connections.
    #[test]
    fn accepted_connections_inherit_nodelay() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        set_nodelay(&listener).expect("sets TCP_NODELAY");
        let address = listener.local_addr().expect("address");
        let _client = std::net::TcpStream::connect(address).expect("connects");
        let (accepted, _) = listener.accept().expect("accepts");
        assert!(accepted.nodelay().expect("reads TCP_NODELAY"));
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
