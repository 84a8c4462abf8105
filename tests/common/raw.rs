//! A raw HTTP/1.1 client for the tests that send what no library would (framing faults,
//! pipelining, clients that never read), client threads, and the child's threads and
//! descriptors from /proc.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Runs `client` on a thread of its own: what a client does to a connection the exporter may
/// close (trickle a body, pipeline requests it never reads, scrape in the background). An I/O
/// error ends it quietly, because the exporter closing the connection is an outcome the test
/// looks at on its own thread, not a failure of this one (and a panic in a detached thread
/// while the test binary exits aborts it under emulation). What it returns, the test can join.
pub fn client<T: Send + 'static>(
    client: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::thread::JoinHandle<Option<T>> {
    std::thread::spawn(move || client().ok())
}

/// One answer read off a connection.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The status line and headers, without the blank line.
    pub head: String,
    pub body: Vec<u8>,
}

/// Why no (further) answer came.
#[derive(Debug, PartialEq)]
pub enum End {
    /// The server closed the connection (or reset it) before another answer began.
    Closed,
    /// Nothing within the read timeout.
    TimedOut,
    /// An answer that does not parse as HTTP/1.x.
    Garbled(String),
}

/// A connection to `host:port` (or `http://host:port`), with a read timeout.
pub struct Conn {
    pub stream: TcpStream,
    pending: Vec<u8>,
}

impl Conn {
    pub fn open(base: &str, timeout: Duration) -> Conn {
        let stream = TcpStream::connect(base.trim_start_matches("http://")).expect("connects");
        Conn::wrap(stream, timeout)
    }

    pub fn wrap(stream: TcpStream, timeout: Duration) -> Conn {
        let _ = stream.set_nodelay(true);
        stream.set_read_timeout(Some(timeout)).expect("timeout");
        Conn {
            stream,
            pending: Vec::new(),
        }
    }

    /// Writes all of `bytes`; false when the server has closed (a closed connection is an
    /// outcome the tests look at, not an error).
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    fn fill(&mut self) -> Result<(), End> {
        let mut buf = [0u8; 16 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => Err(End::Closed),
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(End::TimedOut)
            }
            Err(_) => Err(End::Closed),
        }
    }

    /// The next answer; `head_request` when it answers a HEAD (no body follows).
    pub fn answer_to(&mut self, head_request: bool) -> Result<Answer, End> {
        let end = loop {
            if let Some(at) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            match self.fill() {
                Err(End::Closed) if !self.pending.is_empty() => {
                    return Err(End::Garbled(
                        String::from_utf8_lossy(&self.pending).into_owned(),
                    ));
                }
                Err(e) => return Err(e),
                Ok(()) => {}
            }
        };
        let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
        self.pending.drain(..end + 4);
        let status = head
            .strip_prefix("HTTP/1.")
            .and_then(|rest| rest.get(2..5))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| End::Garbled(head.clone()))?;
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        let mut body = Vec::new();
        if head_request || status == 204 || status == 304 {
            // No body.
        } else if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            loop {
                let line_end = loop {
                    if let Some(at) = self.pending.windows(2).position(|w| w == b"\r\n") {
                        break at;
                    }
                    self.fill().map_err(|_| End::Garbled(head.clone()))?;
                };
                let size = std::str::from_utf8(&self.pending[..line_end])
                    .ok()
                    .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
                    .ok_or_else(|| End::Garbled(head.clone()))?;
                self.pending.drain(..line_end + 2);
                while self.pending.len() < size + 2 {
                    self.fill().map_err(|_| End::Garbled(head.clone()))?;
                }
                body.extend(self.pending.drain(..size));
                self.pending.drain(..2);
                if size == 0 {
                    break;
                }
            }
        } else if let Some(len) = header("content-length") {
            let len: usize = len.parse().map_err(|_| End::Garbled(head.clone()))?;
            while self.pending.len() < len {
                self.fill().map_err(|_| End::Garbled(head.clone()))?;
            }
            body.extend(self.pending.drain(..len));
        } else {
            // Delimited by the close.
            while self.fill().is_ok() {}
            body.append(&mut self.pending);
        }
        Ok(Answer { status, head, body })
    }

    pub fn answer(&mut self) -> Result<Answer, End> {
        self.answer_to(false)
    }

    /// Whether the server has closed the connection already (nothing unread and end of stream,
    /// or a reset), without waiting.
    pub fn closed_now(&self) -> bool {
        if !self.pending.is_empty() || self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let peeked = self.stream.peek(&mut [0u8; 1]);
        let _ = self.stream.set_nonblocking(false);
        match peeked {
            Ok(n) => n == 0,
            Err(e) => e.kind() != ErrorKind::WouldBlock,
        }
    }

    /// Whether the server closes the connection (rather than sending more or leaving it open)
    /// within the read timeout.
    pub fn closed(&mut self) -> bool {
        if !self.pending.is_empty() {
            return false;
        }
        matches!(self.fill(), Err(End::Closed))
    }
}

/// A client socket with a receive buffer of `bytes` (set before the connection, so that the
/// window it advertises stays small): a client that reads slowly or not at all.
pub fn small_window(base: &str, bytes: i32) -> TcpStream {
    use std::os::fd::FromRawFd;
    let address: std::net::SocketAddrV4 = base
        .trim_start_matches("http://")
        .parse()
        .expect("an IPv4 address");
    // SAFETY: socket, setsockopt and connect on a descriptor we own, with plain structs; the
    // descriptor is handed to the TcpStream, which closes it.
    // Close-on-exec, as std's own sockets: an exporter another test starts meanwhile must not
    // inherit it (and hold the connection open).
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let stream = TcpStream::from_raw_fd(fd);
        let set = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
        assert_eq!(set, 0, "SO_RCVBUF: {}", std::io::Error::last_os_error());
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: address.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*address.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let connected = libc::connect(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(connected, 0, "connect: {}", std::io::Error::last_os_error());
        stream
    }
}

/// One TCP end of this machine, as /proc/net/tcp lists it.
struct TcpEnd {
    local: u16,
    remote: u16,
    /// Bytes received and not yet read.
    receive_queue: usize,
    inode: String,
}

/// The TCP ends of this machine (/proc/net/tcp and tcp6). Read once for many connections: the
/// table lists every socket, the TIME_WAIT ones of the whole test run included, and takes
/// milliseconds to read.
fn tcp_table() -> Vec<TcpEnd> {
    let port = |field: &str| {
        let hex = field.rsplit(':').next()?;
        u16::from_str_radix(hex, 16).ok()
    };
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let (l, r, q) = (fields.get(1)?, fields.get(2)?, fields.get(4)?);
                    let (_, rx) = q.split_once(':')?;
                    Some(TcpEnd {
                        local: port(l)?,
                        remote: port(r)?,
                        receive_queue: usize::from_str_radix(rx, 16).ok()?,
                        inode: fields.get(9)?.to_string(),
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The end at `local` connected to `remote`, in `table`.
fn end_of(
    table: &[TcpEnd],
    local: Option<std::net::SocketAddr>,
    remote: Option<std::net::SocketAddr>,
) -> Option<&TcpEnd> {
    let (local, remote) = (local?.port(), remote?.port());
    table
        .iter()
        .find(|e| e.local == local && e.remote == remote)
}

/// The receive queue of the end at `local` connected to `remote`, in `table`.
fn receive_queue(
    table: &[TcpEnd],
    local: Option<std::net::SocketAddr>,
    remote: Option<std::net::SocketAddr>,
) -> Option<usize> {
    end_of(table, local, remote).map(|e| e.receive_queue)
}

/// Bytes of what `client` sent that the server has not read yet: the receive queue of the
/// server's end of the connection, or `None` while that end is not listed. So a test can wait
/// until the server has taken a request (0), or has stopped reading (more than 0), rather than
/// sleep and hope.
pub fn unread_by_server(client: &TcpStream) -> Option<usize> {
    receive_queue(
        &tcp_table(),
        client.peer_addr().ok(),
        client.local_addr().ok(),
    )
}

/// Bytes the server sent that `client` has not read yet (its own receive queue): more than 0
/// once an answer has been handed to the connection.
pub fn unread_by_client(client: &TcpStream) -> Option<usize> {
    receive_queue(
        &tcp_table(),
        client.local_addr().ok(),
        client.peer_addr().ok(),
    )
}

/// Waits (up to `within`, a bound) until the server has read everything each of `clients`
/// sent.
pub fn wait_until_read<'a>(clients: impl IntoIterator<Item = &'a TcpStream>, within: Duration) {
    let clients: Vec<&TcpStream> = clients.into_iter().collect();
    super::wait_until("the server reads what the clients sent", within, || {
        let table = tcp_table();
        clients
            .iter()
            .all(|c| receive_queue(&table, c.peer_addr().ok(), c.local_addr().ok()) == Some(0))
    });
}

/// Waits (up to `within`, a bound) until the process `pid` holds `count` sockets (its
/// listeners and the connections it has accepted).
pub fn wait_for_sockets(pid: u32, count: usize, within: Duration) {
    super::wait_until(&format!("{count} sockets held"), within, || {
        sockets(pid).is_some_and(|s| s.len() == count)
    });
}

/// A loopback TCP port held for as long as this lives and refusing every connection (a socket
/// bound and never listening): a target that is down, which no other process can take over
/// meanwhile, as it could a port found free and let go.
pub struct Refusing {
    _socket: std::os::fd::OwnedFd,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl Refusing {
    pub fn new() -> Refusing {
        use std::os::fd::FromRawFd;
        // SAFETY: socket, bind and getsockname on a descriptor we own, with plain structs; the
        // descriptor is handed to the OwnedFd, which closes it.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let socket = std::os::fd::OwnedFd::from_raw_fd(fd);
            let mut sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
                },
                sin_zero: [0; 8],
            };
            let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let bound = libc::bind(fd, (&sin as *const libc::sockaddr_in).cast(), len);
            assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
            let named =
                libc::getsockname(fd, (&mut sin as *mut libc::sockaddr_in).cast(), &mut len);
            assert_eq!(named, 0, "getsockname: {}", std::io::Error::last_os_error());
            Refusing {
                _socket: socket,
                address: format!("127.0.0.1:{}", u16::from_be(sin.sin_port)),
            }
        }
    }
}

/// The process's threads (/proc/PID/status `Threads:`).
pub fn threads(pid: u32) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// The process's open descriptors (entries of /proc/PID/fd).
pub fn descriptors(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// The socket inodes among the process's descriptors, less those the test process holds too
/// (inherited ones: the exporter did not open them).
pub fn sockets(pid: u32) -> Option<Vec<String>> {
    let inodes = |dir: String| -> Option<Vec<String>> {
        let fds = std::fs::read_dir(dir).ok()?;
        Some(
            fds.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|l| l.to_string_lossy().into_owned())
                .filter(|l| l.starts_with("socket:"))
                .collect(),
        )
    };
    let ours = inodes("/proc/self/fd".to_owned()).unwrap_or_default();
    let mut theirs = inodes(format!("/proc/{pid}/fd"))?;
    theirs.retain(|s| !ours.contains(s));
    Some(theirs)
}

/// The loopback addresses the process `pid` listens on (its sockets in state LISTEN in
/// /proc/net/tcp), for an exporter whose log level hides its "Listening on" line.
pub fn listening(pid: u32) -> Vec<String> {
    let Some(ours) = sockets(pid) else {
        return Vec::new();
    };
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            (*state == "0A" && ours.contains(&format!("socket:[{inode}]"))).then_some(())?;
            let (ip, port) = local.split_once(':')?;
            let ip = u32::from_str_radix(ip, 16).ok()?;
            let port = u16::from_str_radix(port, 16).ok()?;
            // /proc/net/tcp writes the address in host byte order of a network-order u32.
            Some(format!(
                "{}:{port}",
                std::net::Ipv4Addr::from(u32::from_be(ip))
            ))
        })
        .collect()
}

/// The exporter's end of `client`'s connection, as a descriptor of this process
/// (pidfd_getfd(2), which needs the right to ptrace the exporter, as its parent has): so that a
/// test can read the options the exporter set on it. `None` where it cannot be had.
pub fn server_end(pid: u32, client: &TcpStream) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let table = tcp_table();
    let inode = &end_of(&table, client.peer_addr().ok(), client.local_addr().ok())?.inode;
    let socket = format!("socket:[{inode}]");
    let fd: i32 = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .find(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == socket))?
        .file_name()
        .to_str()?
        .parse()
        .ok()?;
    // SAFETY: two syscalls with plain integers; each returns a new descriptor this process owns,
    // or -1.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) as i32;
        if pidfd < 0 {
            return None;
        }
        let pidfd = std::os::fd::OwnedFd::from_raw_fd(pidfd);
        let ours = libc::syscall(
            libc::SYS_pidfd_getfd,
            std::os::fd::AsRawFd::as_raw_fd(&pidfd),
            fd,
            0,
        ) as i32;
        (ours >= 0).then(|| std::os::fd::OwnedFd::from_raw_fd(ours))
    }
}
