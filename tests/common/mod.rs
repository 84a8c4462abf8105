//! Test harness: a fake metadata endpoint, the real binary started against it, and a strict
//! parser of the exposition text (so every output a test sees is checked for validity).
#![allow(dead_code)] // Each test file uses a different part of this module.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A number from the environment variable `name` (for benchmark and fuzzer sizes), or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `fixtures/<case>` as a string, for `--ecs.metadata-uri`.
pub fn fixture(case: &str) -> String {
    project_dir()
        .join("fixtures")
        .join(case)
        .to_str()
        .expect("UTF-8 path")
        .to_owned()
}

/// `../shared`, or where `ECS_EXPORTER_SHARED` says it is (for a copy of the tree elsewhere,
/// as cargo-mutants makes).
fn shared_path() -> PathBuf {
    match std::env::var_os("ECS_EXPORTER_SHARED") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => project_dir().join("../shared"),
    }
}

/// `../shared`, for a test that `#[cfg_attr(no_shared, ignore = ...)]` leaves out when it is
/// absent (src/build.rs): reaching here without it is a failure (CI, or a stale build probe).
pub fn shared_dir() -> PathBuf {
    let dir = shared_path();
    assert!(
        dir.is_dir(),
        "../shared is not beside the project: CI must provide it (or set ECS_EXPORTER_SKIP_SHARED=1); \
         if you removed it, `touch src/build.rs` so that these tests show as ignored"
    );
    dir
}

/// `../shared`, if present and not switched off, for tests that use it only when they can
/// (extra fuzz seeds, benchmark inputs).
pub fn shared_dir_if_present() -> Option<PathBuf> {
    let dir = shared_path();
    let off = std::env::var_os("ECS_EXPORTER_SKIP_SHARED").is_some_and(|v| v == "1");
    (dir.is_dir() && !off).then_some(dir)
}

/// What the fake endpoint answers to one request.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn file(path: &Path) -> Reply {
        let body =
            std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Reply { status: 200, body }
    }
}

/// A metadata endpoint on loopback: `{base}/task` and `{base}/task/stats`.
pub struct FakeMetadata {
    pub base: String,
    pub hits: Arc<AtomicUsize>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl FakeMetadata {
    /// Serves two files, read again on every request.
    pub fn files(task: PathBuf, stats: PathBuf) -> FakeMetadata {
        FakeMetadata::start(move |path| match path {
            "/task" => Reply::file(&task),
            "/task/stats" => Reply::file(&stats),
            _ => Reply {
                status: 404,
                body: b"not found".to_vec(),
            },
        })
    }

    /// `handler` gets the path below the base (`/task` or `/task/stats`).
    pub fn start(handler: impl Fn(&str) -> Reply + Send + 'static) -> FakeMetadata {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("fake endpoint binds"));
        let port = server.server_addr().to_ip().expect("ip listener").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let (srv, count) = (Arc::clone(&server), Arc::clone(&hits));
        let thread = std::thread::spawn(move || {
            for request in srv.incoming_requests() {
                count.fetch_add(1, Ordering::SeqCst);
                let path = request
                    .url()
                    .strip_prefix("/v4/fake")
                    .unwrap_or("")
                    .to_owned();
                let reply = handler(&path);
                let response =
                    tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
                let _ = request.respond(response);
            }
        });
        FakeMetadata {
            base: format!("http://127.0.0.1:{port}/v4/fake"),
            hits,
            server,
            thread: Some(thread),
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for FakeMetadata {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

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
    log: Arc<Mutex<String>>,
}

impl Exporter {
    pub fn start(args: &[&str]) -> Exporter {
        let mut child = exporter_command()
            .arg("--web.listen-address=127.0.0.1:0")
            .args(args)
            .env_remove("ECS_CONTAINER_METADATA_URI_V4")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the exporter starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr piped"));
        // Up to the first "Listening on" line (warnings may come before it), with its
        // logfmt `address=HOST:PORT` or JSON `"address":"HOST:PORT"`.
        let mut first = String::new();
        let mut address = None;
        while address.is_none() {
            let mut line = String::new();
            if !stderr.read_line(&mut line).is_ok_and(|n| n > 0) {
                break;
            }
            first.push_str(&line);
            if line.contains("Listening on") {
                address = line
                    .split([' ', ','])
                    .find_map(|field| {
                        field
                            .strip_prefix("address=")
                            .or_else(|| field.strip_prefix("\"address\":"))
                    })
                    .map(|a| a.trim().trim_end_matches('}').trim_matches('"').to_owned());
            }
        }
        let Some(address) = address else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the exporter did not start; it said: {first}")
        };
        let log = Arc::new(Mutex::new(first));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).is_ok_and(|n| n > 0) {
                sink.lock().expect("log lock").push_str(&line);
                line.clear();
            }
        });
        Exporter {
            child,
            base: format!("http://{address}"),
            log,
        }
    }

    pub fn get(&self, path: &str) -> minreq::Response {
        minreq::get(format!("{}{path}", self.base))
            .with_timeout(10)
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
            .with_timeout(10)
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

    /// Everything the exporter wrote to stderr so far (waits briefly for lines in flight).
    pub fn log(&self) -> String {
        std::thread::sleep(Duration::from_millis(50));
        self.log.lock().expect("log lock").clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
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
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "ecs_exporter {args:?} did not exit within 20 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        status.code().unwrap_or(-1),
        stdout.join().expect("stdout"),
        stderr.join().expect("stderr"),
    )
}

/// One sample: name, label pairs, value.
pub type Series = (String, Vec<(String, String)>, f64);

/// Parses exposition format 0.0.4 strictly, panicking with the offending line on any error:
/// each family's HELP then TYPE come first and once, samples of a family are contiguous,
/// label values are properly escaped, no series repeats, and values are Go floats.
pub fn parse_exposition(text: &str) -> Vec<Series> {
    let mut series: Vec<Series> = Vec::new();
    let mut families: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut typed = false;
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "exposition must end with a newline"
    );
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad HELP: {line}"));
            assert!(valid_name(name), "bad metric name in: {line}");
            assert!(
                !families.contains(&name.to_owned()),
                "family {name} appears twice"
            );
            check_escapes(help, false, line);
            families.push(name.to_owned());
            current = Some(name.to_owned());
            typed = false;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad TYPE: {line}"));
            assert_eq!(Some(name), current.as_deref(), "TYPE without HELP: {line}");
            assert!(
                matches!(kind, "counter" | "gauge"),
                "unexpected type: {line}"
            );
            assert!(!typed, "TYPE twice: {line}");
            typed = true;
        } else {
            let (name, labels, value) = parse_sample(line);
            assert_eq!(
                Some(name.as_str()),
                current.as_deref(),
                "sample outside its family: {line}"
            );
            assert!(typed, "sample before TYPE: {line}");
            assert!(
                !series.iter().any(|(n, l, _)| *n == name && *l == labels),
                "duplicate series: {line}"
            );
            series.push((name, labels, value));
        }
    }
    series
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn check_escapes(text: &str, quoted: bool, line: &str) {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\\' | 'n') => {}
                Some('"') if quoted => {}
                other => panic!("bad escape \\{other:?} in: {line}"),
            },
            '"' if quoted => panic!("unescaped quote in: {line}"),
            '\n' => panic!("raw newline in: {line}"),
            _ => {}
        }
    }
}

fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_sample(line: &str) -> Series {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("bad sample: {line}"));
    let name = &line[..name_end];
    assert!(valid_name(name), "bad metric name in: {line}");
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut body = body;
        loop {
            let (label, after) = body
                .split_once("=\"")
                .unwrap_or_else(|| panic!("bad labels: {line}"));
            assert!(
                valid_name(label) && !label.contains(':'),
                "bad label name in: {line}"
            );
            // The value ends at the first quote not escaped by a backslash.
            let bytes = after.as_bytes();
            let mut i = 0;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            assert!(i < bytes.len(), "unterminated label value: {line}");
            let raw = &after[..i];
            check_escapes(raw, true, line);
            assert!(
                !labels.iter().any(|(l, _): &(String, String)| l == label),
                "label twice: {line}"
            );
            labels.push((label.to_owned(), unescape(raw)));
            let tail = &after[i + 1..];
            if let Some(t) = tail.strip_prefix(',') {
                body = t;
            } else if let Some(t) = tail.strip_prefix('}') {
                rest = t;
                break;
            } else {
                panic!("bad label separator: {line}");
            }
        }
    }
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no value: {line}"));
    let value = match value {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value in: {line}")),
    };
    (name.to_owned(), labels, value)
}

/// The value of one series, if present.
pub fn value(series: &[Series], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    series
        .iter()
        .find(|(n, l, _)| {
            n == name
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| *v)
}

/// Masks what differs between builds in `ecs_exporter_build_info` (revision, compiler, arch),
/// so golden files hold across commits and platforms.
pub fn mask_build_info(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("ecs_exporter_build_info{") {
            let version = env!("CARGO_PKG_VERSION");
            out.push_str(&format!(
                "ecs_exporter_build_info{{goarch=\"ARCH\",goos=\"linux\",revision=\"REVISION\",rustversion=\"RUSTVERSION\",version=\"{version}\"}} 1"
            ));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Reads a stream to a string (for child pipes).
pub fn read_all(mut r: impl Read) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}

/// What the fault-injecting endpoint does with one request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Serve the file.
    None,
    /// Close the connection at once, without a response (what a refused connection is to one
    /// path when the other path on the same address works).
    Reset,
    Status(u16),
    /// Answer correctly, but only after this long.
    Slow(Duration),
    /// Read the request and never answer.
    Silent,
    /// Promise the whole file, send half of it, close.
    CutShort,
    NotJson,
    EmptyBody,
    /// A 200 with a body of this many bytes, streamed until the client goes away.
    Huge(usize),
}

/// A metadata endpoint on raw TCP that can misbehave per path, for fault injection.
pub struct FaultyMetadata {
    pub base: String,
    pub hits: Arc<AtomicUsize>,
    faults: Arc<Mutex<(Fault, Fault)>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    address: std::net::SocketAddr,
}

impl FaultyMetadata {
    pub fn start(task: PathBuf, stats: PathBuf) -> FaultyMetadata {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let address = listener.local_addr().expect("address");
        let faults = Arc::new(Mutex::new((Fault::None, Fault::None)));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let (f, s, h) = (Arc::clone(&faults), Arc::clone(&stop), Arc::clone(&hits));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let (f, s, h) = (Arc::clone(&f), Arc::clone(&s), Arc::clone(&h));
                let (task, stats) = (task.clone(), stats.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_nodelay(true);
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
                        match stream.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("")
                        .trim_start_matches("/v4/fake")
                        .to_owned();
                    let (fault, file) = {
                        let faults = f.lock().expect("faults lock");
                        match path.as_str() {
                            "/task" => (faults.0.clone(), task),
                            "/task/stats" => (faults.1.clone(), stats),
                            _ => (Fault::Status(404), task),
                        }
                    };
                    let body = std::fs::read(&file).unwrap_or_default();
                    let respond = |stream: &mut std::net::TcpStream, status: u16, body: &[u8]| {
                        let reason = match status {
                            200 => "OK",
                            404 => "Not Found",
                            429 => "Too Many Requests",
                            _ => "Internal Server Error",
                        };
                        let length = body.len();
                        let head = format!(
                            "HTTP/1.1 {status} {reason}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
                        );
                        let _ = stream.write_all(head.as_bytes());
                        let _ = stream.write_all(body);
                    };
                    match fault {
                        Fault::None => respond(&mut stream, 200, &body),
                        Fault::Reset => {}
                        Fault::Status(code) => {
                            respond(&mut stream, code, b"{\"error\": \"injected\"}")
                        }
                        Fault::Slow(delay) => {
                            std::thread::sleep(delay);
                            respond(&mut stream, 200, &body);
                        }
                        Fault::Silent => {
                            while !s.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                        Fault::CutShort => {
                            let head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                                body.len()
                            );
                            let _ = stream.write_all(head.as_bytes());
                            let _ = stream.write_all(&body[..body.len() / 2]);
                        }
                        Fault::NotJson => respond(
                            &mut stream,
                            200,
                            b"<html><body>502 Bad Gateway</body></html>",
                        ),
                        Fault::EmptyBody => respond(&mut stream, 200, b""),
                        Fault::Huge(size) => {
                            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
                            let _ = stream.write_all(head.as_bytes());
                            let chunk = vec![b' '; 65536];
                            let mut sent = 0;
                            while sent < size
                                && stream
                                    .write_all(&chunk[..chunk.len().min(size - sent)])
                                    .is_ok()
                            {
                                sent += chunk.len();
                            }
                        }
                    }
                });
            }
        });
        FaultyMetadata {
            base: format!("http://{address}/v4/fake"),
            hits,
            faults,
            stop,
            address,
        }
    }

    pub fn set(&self, task: Fault, stats: Fault) {
        *self.faults.lock().expect("faults lock") = (task, stats);
    }
}

impl Drop for FaultyMetadata {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.address);
    }
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

/// A directory of its own under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("ecs_exporter-{name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// Writes `task.json` and `stats.json`.
    pub fn documents(&self, task: &str, stats: &str) -> &Path {
        std::fs::write(self.0.join("task.json"), task).expect("write task.json");
        std::fs::write(self.0.join("stats.json"), stats).expect("write stats.json");
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
