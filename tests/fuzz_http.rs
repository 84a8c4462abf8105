//! A seeded HTTP fuzzer through the real binary, beside tests/fuzz.rs's JSON one: request lines,
//! headers, `Content-Length` and `Transfer-Encoding` values, bodies, pipelining, writes split at
//! random points with small pauses, clients that stop reading, hold on, or close early. It
//! starts with issue 26's items as fixed cases (one would have found item 1 at once), then runs
//! random inputs in batches, several clients at a time. Between batches the process must live,
//! answer `/health` (while the batch's held connections are still open), and keep its threads,
//! descriptors and peak memory within the bounds below (docs/design.md, "The HTTP fuzzer").
//!
//! `ECS_EXPORTER_FUZZ_HTTP` (default 4,000; 400 under emulation) and
//! `ECS_EXPORTER_FUZZ_HTTP_SEED` set the run; the long run is
//! `ECS_EXPORTER_FUZZ_HTTP=1000000 cargo test --release --test fuzz_http -- --ignored --nocapture`.
//! A failing batch is written under `target/fuzz-http-failures/`.

mod common;

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::raw::{Conn, descriptors, small_window, threads, wait_for_sockets};
use common::{Exporter, Rng, emulated, fixture, ms, project_dir, vm_hwm};

/// Clients sending at once.
const WORKERS: usize = 8;
/// Clients of a batch that hold their connection open, unread, until the batch ends.
const MAX_HELD: usize = 8;
/// Threads and descriptors a batch may leave beyond the baseline: one a connection (promise 7)
/// for every client that can be connected at once, and a few of the process's own that come
/// and go (a scrape in hand).
const CONCURRENT: usize = WORKERS + MAX_HELD;
const SLACK: usize = 4;
/// Peak resident memory of the process over the whole run (native runs only: under emulation
/// the emulator's own memory is counted). A head and a body are at most 16 KiB each, a
/// connection holds one of each.
const PEAK: u64 = 16 << 20;
/// Inputs between two checks.
const BATCH: usize = 100;
/// How long a client waits for an answer that does not come (a body it never sends, a request
/// the server is right to wait for). Not a bound the server is held to: a client that gives up
/// early is one more input, so it is not scaled for emulation.
const PATIENCE: Duration = Duration::from_millis(150);

/// What a client does once its bytes are sent.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Reads answers until the server closes or `PATIENCE` passes.
    Read,
    /// Shuts its writing side, then reads.
    ShutThenRead,
    /// Closes at once, reading nothing.
    Close,
    /// Stops after this many bytes and closes.
    CloseMidway(usize),
    /// Keeps the connection open and unread until the batch ends, with a 4 KiB window.
    Hold,
}

#[derive(Clone, Debug)]
struct Input {
    bytes: Vec<u8>,
    /// Where the bytes are split into separate writes.
    cuts: Vec<usize>,
    /// Pause between two writes.
    pause: Duration,
    mode: Mode,
}

impl Input {
    fn whole(bytes: impl Into<Vec<u8>>, mode: Mode) -> Input {
        Input {
            bytes: bytes.into(),
            cuts: Vec::new(),
            pause: Duration::ZERO,
            mode,
        }
    }
}

/// Issue 26's items as the inputs the fuzzer starts with.
fn fixed() -> Vec<Input> {
    use Mode::*;
    let mut inputs = vec![
        // 1: a huge declared body.
        Input::whole(
            "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000000\r\n\r\n",
            Read,
        ),
        Input::whole(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n",
            Read,
        ),
        Input::whole(
            "HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000000\r\n\r\n",
            Close,
        ),
        // 2: a declared body never sent.
        Input::whole(
            "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
            Hold,
        ),
        // 3: a scrape and a health check pipelined.
        Input::whole(
            "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
            Read,
        ),
        // 4: 400 scrapes pipelined, never read.
        Input::whole("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(400), Hold),
        // 5: HTTP/2.0.
        Input::whole("GET /health HTTP/2.0\r\nHost: x\r\n\r\n", Read),
        // 6: an idle keep-alive connection.
        Input::whole("GET /health HTTP/1.1\r\nHost: x\r\n\r\n", Hold),
        // 9: framing.
        Input::whole(
            "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            Read,
        ),
        Input::whole(
            "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n\
             0\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
            Read,
        ),
        Input::whole(
            "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            Read,
        ),
        Input::whole(
            "GET /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
             40\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            ShutThenRead,
        ),
        Input::whole("GET /health HTTP/1.1\nHost: x\n\n", Read),
        Input::whole(
            "GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
            Read,
        ),
        Input::whole("GET /health HTTP/1.0\r\n\r\n", Read),
    ];
    // 8: a 1 MiB header line, sent as fast as the server reads.
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
    big.resize(1 << 20, b'a');
    inputs.push(Input::whole(big, Read));
    // 2 again, a byte at a time.
    let mut slow = Input::whole(
        "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n0123456789",
        Read,
    );
    slow.cuts = (40..60).collect();
    slow.pause = Duration::from_millis(20);
    inputs.push(slow);
    inputs
}

const METHODS: &[&str] = &[
    "GET", "GET", "GET", "HEAD", "POST", "PUT", "OPTIONS", "BREW", "get", "", "G ET", "GET\0",
    "CONNECT", "PRI",
];
const TARGETS: &[&str] = &[
    "/metrics",
    "/metrics",
    "/health",
    "/health",
    "/",
    "/nope",
    "*",
    "http://x/metrics",
    "/metrics?x=1&y",
    "/health#f",
    "//metrics",
    "/%00",
    "/metrics/../health",
    "",
];
const VERSIONS: &[&str] = &[
    "HTTP/1.1",
    "HTTP/1.1",
    "HTTP/1.1",
    "HTTP/1.0",
    "HTTP/2.0",
    "HTTP/0.9",
    "HTTP/1.10",
    "http/1.1",
    "HTTP/1",
    "",
    "HTTP/9.9",
    "HTTP/1.1 x",
    "HTTP/3",
];
const LENGTHS: &[&str] = &[
    "0",
    "1",
    "5",
    "16384",
    "16385",
    "5000",
    "100000000000000",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "-1",
    "+5",
    " 5",
    "5 ",
    "0x10",
    "",
    "5, 5",
    "1e3",
];
const ENCODINGS: &[&str] = &[
    "chunked",
    "chunked",
    "gzip",
    "gzip, chunked",
    "chunked, chunked",
    "identity",
    "CHUNKED",
    " chunked",
    "chunked, gzip",
    "",
    "xchunked",
];
const CHUNK_SIZES: &[&str] = &[
    "0",
    "1",
    "a",
    "A",
    "10",
    "4000",
    "4001",
    "ffffffffffffffff",
    "10000000000000000",
    "-1",
    "zz",
    "",
    "5;ext=1",
    "5 ",
];
const HEADERS: &[&str] = &[
    "Host: x",
    "Host: x",
    "Connection: close",
    "Connection: keep-alive",
    "Connection: upgrade",
    "Upgrade: h2c",
    "Expect: 100-continue",
    "Accept-Encoding: gzip",
    "Accept: application/openmetrics-text",
    "No-Colon-Header",
    " leading: space",
    "X-A : b",
    ": empty name",
    "X-Nul: a\0b",
    "X-Bytes: \u{ff}\u{fe}",
    "Content-Type: text/plain",
];

/// One random request: a line, headers, maybe a body.
fn request(rng: &mut Rng) -> Vec<u8> {
    let eol: &[u8] = match rng.below(20) {
        0 => b"\n",
        1 => b"\r",
        _ => b"\r\n",
    };
    let sp = if rng.one_in(20) { "  " } else { " " };
    let mut target = rng.pick(TARGETS).to_owned();
    if rng.one_in(30) {
        target.push_str(&"p".repeat(rng.below(24 * 1024)));
    }
    let mut out = format!(
        "{}{sp}{target}{sp}{}",
        rng.pick(METHODS),
        rng.pick(VERSIONS)
    )
    .into_bytes();
    out.extend_from_slice(eol);
    for _ in 0..rng.below(4) {
        out.extend_from_slice(rng.pick(HEADERS).as_bytes());
        out.extend_from_slice(eol);
    }
    if rng.one_in(20) {
        // obs-fold
        out.extend_from_slice(b"X-Fold: a");
        out.extend_from_slice(eol);
        out.extend_from_slice(b" b");
        out.extend_from_slice(eol);
    }
    if rng.one_in(25) {
        let mut big = b"X-Big: ".to_vec();
        big.resize(rng.below(24 * 1024), b'b');
        out.extend_from_slice(&big);
        out.extend_from_slice(eol);
    }
    // Framing: none, lengths (maybe two), encodings, or both.
    let framing = rng.below(6);
    let mut length = None;
    if framing == 1 || framing == 3 || framing == 5 {
        for _ in 0..1 + usize::from(rng.one_in(5)) {
            let value = if rng.one_in(3) {
                rng.below(40_000).to_string()
            } else {
                rng.pick(LENGTHS).to_owned()
            };
            length = value.trim().parse::<usize>().ok();
            out.extend_from_slice(format!("Content-Length: {value}").as_bytes());
            out.extend_from_slice(eol);
        }
    }
    let chunked = framing == 2 || framing == 3;
    if chunked || framing == 4 {
        out.extend_from_slice(format!("Transfer-Encoding: {}", rng.pick(ENCODINGS)).as_bytes());
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(eol);
    // The body: as declared, shorter, longer, chunked (well or badly), or none.
    if chunked {
        for _ in 0..rng.below(4) {
            let size = if rng.one_in(2) {
                format!("{:x}", rng.below(6000))
            } else {
                rng.pick(CHUNK_SIZES).to_owned()
            };
            let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                .unwrap_or(3)
                .min(20_000);
            out.extend_from_slice(size.as_bytes());
            out.extend_from_slice(b"\r\n");
            out.resize(out.len() + n, b'c');
            out.extend_from_slice(b"\r\n");
        }
        if !rng.one_in(4) {
            out.extend_from_slice(b"0\r\n");
            if rng.one_in(4) {
                out.extend_from_slice(b"Trailer: x\r\n");
            }
            out.extend_from_slice(b"\r\n");
        }
    } else if let Some(n) = length {
        let n = match rng.below(4) {
            0 => n / 2,
            1 => n.saturating_add(rng.below(64)),
            _ => n,
        };
        out.resize(out.len() + n.min(40_000), b'd');
    } else if rng.one_in(10) {
        let n = rng.below(64);
        out.extend((0..n).map(|_| rng.next() as u8));
    }
    out
}

/// A random input: one to five requests on a connection, maybe mangled, sent in one or more
/// writes, and what the client does after.
fn random_input(rng: &mut Rng, held: &mut usize) -> Input {
    let mut bytes = Vec::new();
    for _ in 0..1 + rng.below(5).saturating_sub(2) {
        bytes.extend(request(rng));
    }
    match rng.below(30) {
        0 => bytes.truncate(rng.below(bytes.len() + 1)),
        1 => {
            let at = rng.below(bytes.len() + 1);
            let junk: Vec<u8> = (0..rng.below(8)).map(|_| rng.next() as u8).collect();
            bytes.splice(at..at, junk);
        }
        _ => {}
    }
    let cuts = if rng.one_in(4) {
        let mut cuts: Vec<usize> = (0..1 + rng.below(6))
            .map(|_| rng.below(bytes.len() + 1))
            .collect();
        cuts.sort_unstable();
        cuts
    } else {
        Vec::new()
    };
    let mode = match rng.below(20) {
        0..=11 => Mode::Read,
        12..=14 => Mode::ShutThenRead,
        15 | 16 => Mode::Close,
        17 | 18 => Mode::CloseMidway(rng.below(bytes.len() + 1)),
        _ if *held < MAX_HELD => {
            *held += 1;
            Mode::Hold
        }
        _ => Mode::Read,
    };
    Input {
        bytes,
        cuts,
        pause: Duration::from_millis(rng.below(4) as u64),
        mode,
    }
}

/// Plays one input against the exporter; a held connection is returned for the batch to keep.
fn play(base: &str, input: &Input) -> Option<TcpStream> {
    let stream = match input.mode {
        Mode::Hold => small_window(base, 4096),
        _ => TcpStream::connect(base.trim_start_matches("http://")).ok()?,
    };
    let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
    let mut c = Conn::wrap(stream, PATIENCE);
    let end = match input.mode {
        Mode::CloseMidway(at) => at.min(input.bytes.len()),
        _ => input.bytes.len(),
    };
    let mut from = 0;
    for &cut in input.cuts.iter().chain([&end]) {
        let cut = cut.clamp(from, end);
        if !c.send(&input.bytes[from..cut]) {
            break;
        }
        from = cut;
        if !input.pause.is_zero() {
            std::thread::sleep(input.pause);
        }
    }
    match input.mode {
        Mode::Read | Mode::ShutThenRead => {
            if matches!(input.mode, Mode::ShutThenRead) {
                let _ = c.stream.shutdown(Shutdown::Write);
            }
            // Answers until the server closes, waits, or sends what is not HTTP/1.x (a HEAD's
            // answer read as if it had a body, say): all fine, the checks are the server's.
            for _ in 0..8 {
                if c.answer().is_err() {
                    break;
                }
            }
            None
        }
        Mode::Close | Mode::CloseMidway(_) => None,
        Mode::Hold => Some(c.stream),
    }
}

/// Runs a batch, `WORKERS` clients at a time; returns the held connections, which the caller
/// keeps open through its checks.
fn run_batch(base: &str, inputs: &[Input]) -> Vec<TcpStream> {
    let next = Arc::new(AtomicUsize::new(0));
    let held = Arc::new(Mutex::new(Vec::new()));
    let inputs = Arc::new(inputs.to_vec());
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (next, held, inputs) = (Arc::clone(&next), Arc::clone(&held), Arc::clone(&inputs));
            let base = base.to_owned();
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(input) = inputs.get(i) else { break };
                    if let Some(stream) = play(&base, input) {
                        held.lock().expect("held").push(stream);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a client thread");
    }
    std::mem::take(&mut *held.lock().expect("held"))
}

/// The checks between batches; an error says what is wrong.
fn check(e: &mut Exporter, base: (usize, usize)) -> Result<(), String> {
    let health = TcpStream::connect(e.base.trim_start_matches("http://")).map(|s| {
        let mut c = Conn::wrap(s, ms(5000));
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        c.answer()
    });
    // Answered or not, the process must still be there after it.
    if !e.alive() {
        return Err(format!("the process ended: {}", e.log()));
    }
    match health {
        Ok(Ok(a)) if a.status == 200 && a.body == b"ok" => {}
        other => return Err(format!("/health: {other:?}")),
    }
    let pid = e.pid();
    let bound = (base.0 + CONCURRENT + SLACK, base.1 + CONCURRENT + SLACK);
    let patience = ms(3000);
    let waited = Instant::now();
    loop {
        let now = (
            threads(pid).unwrap_or(usize::MAX),
            descriptors(pid).unwrap_or(usize::MAX),
        );
        if now.0 <= bound.0 && now.1 <= bound.1 {
            break;
        }
        if waited.elapsed() > patience {
            return Err(format!(
                "(threads, descriptors) {now:?} {patience:?} after a batch, bound {bound:?} \
                 (baseline {base:?})"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if !emulated() {
        let peak = vm_hwm(pid).unwrap_or(u64::MAX);
        if peak > PEAK {
            return Err(format!("VmHWM {peak} bytes, bound {PEAK}"));
        }
    }
    Ok(())
}

fn fuzz(count: usize) {
    let seed: u64 = common::env_or("ECS_EXPORTER_FUZZ_HTTP_SEED", 0x4854_5450);
    let mut rng = Rng(seed | 1);
    let mut e = Exporter::start(&[
        "--ecs.metadata-uri",
        &fixture("fargate"),
        "--web.idle-timeout=2s",
    ]);
    assert_eq!(e.get("/health").status_code, 200);
    // Its connection ended: the only socket is the listener.
    wait_for_sockets(e.pid(), 1, ms(5000));
    let base = (
        threads(e.pid()).expect("threads"),
        descriptors(e.pid()).expect("descriptors"),
    );
    let started = Instant::now();
    // Each fixed case is a batch of its own, checked on its own; then the random batches.
    let mut fixed: Vec<Input> = fixed();
    let fixed_count = fixed.len();
    let total = fixed_count + count;
    let (mut done, mut b) = (0, 0);
    while done < total {
        let batch = if b < fixed_count {
            vec![fixed.remove(0)]
        } else {
            let mut held = 0;
            (0..BATCH.min(total - done))
                .map(|_| random_input(&mut rng, &mut held))
                .collect()
        };
        let held = run_batch(&e.base, &batch);
        done += batch.len();
        let checked = check(&mut e, base);
        drop(held);
        if let Err(why) = checked {
            let dir = project_dir().join("target/fuzz-http-failures");
            let _ = std::fs::create_dir_all(&dir);
            for (i, input) in batch.iter().enumerate() {
                let _ = std::fs::write(dir.join(format!("{b}-{i}.http")), &input.bytes);
            }
            let _ = std::fs::write(dir.join(format!("{b}.txt")), format!("{batch:#?}"));
            panic!(
                "batch {b} ({} inputs, seed {seed}): {why}; its inputs are in {}",
                batch.len(),
                dir.display()
            );
        }
        b += 1;
    }
    eprintln!(
        "fuzz_http: {done} inputs ({fixed_count} fixed), 0 failures, in {:?}; peak {:?} KiB",
        started.elapsed(),
        vm_hwm(e.pid()).map(|p| p >> 10)
    );
}

#[test]
fn http_requests_never_end_hold_or_leak_the_exporter() {
    let default = if emulated() { 400 } else { 4000 };
    fuzz(common::env_or("ECS_EXPORTER_FUZZ_HTTP", default));
}

/// The long run: `ECS_EXPORTER_FUZZ_HTTP=1000000 cargo test --release --test fuzz_http --
/// --ignored --nocapture` (a million by default).
#[test]
#[ignore = "the long run, by hand: see the module's documentation"]
fn http_requests_long_run() {
    fuzz(common::env_or("ECS_EXPORTER_FUZZ_HTTP", 1_000_000));
}
