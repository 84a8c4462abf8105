//! The binary under test: started against an endpoint on an ephemeral port, run to completion,
//! or measured.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::parse_exposition;

/// A command for the binary under test. When the tests of a cross build run under emulation
/// (`CARGO_TARGET_<TRIPLE>_RUNNER=qemu-aarch64-static`), the kernel cannot exec the binary
/// itself, so `ECS_EXPORTER_TEST_RUNNER` names the emulator to put in front of it.
pub fn exporter_command() -> Command {
    exporter_command_with(&[])
}

/// [`exporter_command`] with programs before it (as `unshare --pid --fork`).
pub fn exporter_command_with(prefix: &[&str]) -> Command {
    let runner = std::env::var("ECS_EXPORTER_TEST_RUNNER")
        .ok()
        .filter(|r| !r.is_empty());
    let mut words: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
    words.extend(runner);
    words.push(env!("CARGO_BIN_EXE_ecs_exporter").to_owned());
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]);
    cmd
}

/// The real binary, listening on an ephemeral loopback port.
pub struct Exporter {
    child: Child,
    pub base: String,
    /// Every address it listens on, in the order of its "Listening on" lines.
    pub bases: Vec<String>,
    log: Log,
}

/// The address of a "Listening on" line (exporter-toolkit's words, which the exporter, the Go
/// exporter and Prometheus all print once listening), logfmt's `address=HOST:PORT` or JSON's
/// `"address":"HOST:PORT"`: so that each listens on `:0` and the test learns the port.
pub fn listening_address(line: &str) -> Option<String> {
    if !line.contains("Listening on") {
        return None;
    }
    line.split([' ', ','])
        .find_map(|field| {
            field
                .strip_prefix("address=")
                .or_else(|| field.strip_prefix("\"address\":"))
        })
        .map(|a| a.trim().trim_end_matches('}').trim_matches('"').to_owned())
}

/// Reads a child's stderr up to the first line that contains `last` (or its end): the text
/// read, and the addresses of the "Listening on" lines in it.
pub fn read_until(stderr: &mut impl BufRead, last: &str) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut addresses = Vec::new();
    loop {
        let mut line = String::new();
        if !stderr.read_line(&mut line).is_ok_and(|n| n > 0) {
            break;
        }
        text.push_str(&line);
        addresses.extend(listening_address(&line));
        if line.contains(last) {
            break;
        }
    }
    (text, addresses)
}

/// The exporter's stderr, taken as it comes by a thread of its own (so that the exporter never
/// blocks on a full pipe) and by [`Log::read`]. Both read the pipe without blocking and only
/// while holding the lock, so that when `read` has drained it, every byte the exporter wrote
/// before is in the text: no wait for the thread to catch up.
#[derive(Clone)]
struct Log {
    text: Arc<Mutex<(String, std::process::ChildStderr)>>,
    fd: std::os::fd::RawFd,
}

impl Log {
    fn follow(stderr: BufReader<std::process::ChildStderr>, first: String) -> Log {
        use std::os::fd::AsRawFd;
        // What the reader buffered past the first line is kept too.
        let mut text = first;
        text.push_str(&String::from_utf8_lossy(stderr.buffer()));
        let pipe = stderr.into_inner();
        let fd = pipe.as_raw_fd();
        // SAFETY: fcntl on a descriptor this process owns (the pipe).
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        let log = Log {
            text: Arc::new(Mutex::new((text, pipe))),
            fd,
        };
        let follower = log.clone();
        std::thread::spawn(move || {
            loop {
                let mut ready = libc::pollfd {
                    fd: follower.fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: poll on one pollfd of a descriptor the Log keeps open.
                let polled = unsafe { libc::poll(&mut ready, 1, -1) };
                if polled < 0
                    && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
                {
                    return;
                }
                if !follower.drain() {
                    return;
                }
            }
        });
        log
    }

    /// Reads what the pipe holds into the text; false once the exporter has closed it.
    fn drain(&self) -> bool {
        let mut guard = self.text.lock().unwrap_or_else(|p| p.into_inner());
        let (text, pipe) = &mut *guard;
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
    }

    fn read(&self) -> String {
        self.drain();
        self.text
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }
}

impl Exporter {
    pub fn start(args: &[&str]) -> Exporter {
        Exporter::start_with(args, None)
    }

    /// [`Exporter::start`] with a hook run in the child before it execs (to lower a limit).
    pub fn start_with(args: &[&str], pre: Option<fn() -> std::io::Result<()>>) -> Exporter {
        let mut command = exporter_command();
        if let Some(pre) = pre {
            use std::os::unix::process::CommandExt;
            // SAFETY: the hooks the tests pass only call async-signal-safe functions (setrlimit).
            unsafe {
                command.pre_exec(pre);
            }
        }
        let mut child = command
            .arg("--web.listen-address=127.0.0.1:0")
            .args(args)
            .env_remove("ECS_CONTAINER_METADATA_URI_V4")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the exporter starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr piped"));
        // Up to the line that ends the start-up ("Starting ecs_exporter", after every
        // "Listening on"; warnings may come before them). A level above INFO hides both: then
        // the listening sockets are found in /proc instead.
        let quiet = args
            .iter()
            .any(|a| ["--log.level=warn", "--log.level=error"].contains(a));
        let (first, addresses) = if quiet {
            let pid = child.id();
            let found = super::wait_for("the exporter listens", super::ms(20_000), || {
                let exited = child.try_wait().ok().flatten().map(|_| Vec::new());
                exited.or_else(|| Some(super::raw::listening(pid)).filter(|l| !l.is_empty()))
            });
            (String::new(), found)
        } else {
            read_until(&mut stderr, "Starting ecs_exporter")
        };
        let Some(address) = addresses.first().cloned() else {
            let _ = child.kill();
            let _ = child.wait();
            let mut rest = String::new();
            let _ = stderr.read_to_string(&mut rest);
            panic!("the exporter did not start; it said: {first}{rest}")
        };
        let log = Log::follow(stderr, first);
        Exporter {
            child,
            base: format!("http://{address}"),
            bases: addresses.iter().map(|a| format!("http://{a}")).collect(),
            log,
        }
    }

    pub fn get(&self, path: &str) -> minreq::Response {
        minreq::get(format!("{}{path}", self.base))
            .with_timeout(super::ms(10_000).as_secs())
            .send()
            .expect("the exporter answers")
    }

    pub fn request(&self, method: &str, path: &str) -> minreq::Response {
        let method = match method {
            "HEAD" => minreq::Method::Head,
            "POST" => minreq::Method::Post,
            "DELETE" => minreq::Method::Delete,
            other => minreq::Method::Custom(other.to_owned()),
        };
        minreq::Request::new(method, format!("{}{path}", self.base))
            .with_timeout(super::ms(10_000).as_secs())
            .send()
            .expect("answers")
    }

    /// GET the metrics, checking status, content type and that the text parses.
    pub fn metrics(&self) -> String {
        let response = self.get("/metrics");
        assert_eq!(response.status_code, 200);
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8; escaping=underscores")
        );
        let text = response.as_str().expect("UTF-8").to_owned();
        parse_exposition(&text);
        text
    }

    /// Everything the exporter has written to stderr so far: every line it wrote before an
    /// answer the test has read is in it.
    pub fn log(&self) -> String {
        self.log.read()
    }

    /// Waits (up to `within`, already a bound: `common::ms`) until the log holds `needle`;
    /// the whole log.
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> String {
        super::wait_for(&format!("a log line with {needle:?}"), within, || {
            let log = self.log();
            log.contains(needle).then_some(log)
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (it has not exited, crashed or aborted).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits up to `patience` for the exit: its status and how long it took,
    /// or `None` if it was still running then.
    pub fn terminate(
        &mut self,
        patience: Duration,
    ) -> Option<(std::process::ExitStatus, Duration)> {
        let asked = std::time::Instant::now();
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        while asked.elapsed() < patience {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some((status, asked.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process that is killed and reaped when the guard goes, a failing test included, so
/// that no exporter outlives its test (and no `cargo test | ...` hangs on its open stderr).
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the binary to completion: (exit code, stdout, stderr).
pub fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = exporter_command();
    cmd.args(args)
        .env_remove("ECS_CONTAINER_METADATA_URI_V4")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = ChildGuard(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs"),
    );
    // A run that should end but serves instead (a bug) fails here rather than hanging.
    let (stdout, stderr) = (child.0.stdout.take(), child.0.stderr.take());
    let stdout = std::thread::spawn(move || stdout.map(read_all).unwrap_or_default());
    let stderr = std::thread::spawn(move || stderr.map(read_all).unwrap_or_default());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("waits") {
            break status;
        }
        let bound = super::ms(20_000);
        assert!(
            started.elapsed() < bound,
            "ecs_exporter {args:?} did not exit within {bound:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        status.code().unwrap_or(-1),
        stdout.join().expect("stdout"),
        stderr.join().expect("stderr"),
    )
}

/// Reads a stream to a string (for child pipes).
pub fn read_all(mut r: impl Read) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}

/// Whether the binary under test runs under an emulator (whose own memory would be counted).
pub fn emulated() -> bool {
    std::env::var("ECS_EXPORTER_TEST_RUNNER").is_ok_and(|r| !r.is_empty())
}

/// Peak resident memory (VmHWM) of a process, in bytes.
pub fn vm_hwm(pid: u32) -> Option<u64> {
    proc_status_bytes(pid, "VmHWM:")
}

/// Resident memory (VmRSS) of a process, in bytes.
pub fn vm_rss(pid: u32) -> Option<u64> {
    proc_status_bytes(pid, "VmRSS:")
}

fn proc_status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix(field))?;
    Some(line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()? * 1024)
}
