//! gzip answers through the real binary, with the request headers real clients send: the body
//! decompresses (by the system's own `gzip`, which checks the CRC and length) to exactly the
//! identity answer; refusals and identity-only clients get identity; HEAD answers as GET would;
//! and random `Accept-Encoding` values get the encoding the Go exporter chooses for them.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::go::Go;
use common::{Exporter, fixture};

/// Prometheus 2.x (2.49 to 2.55) with its default scrape protocols.
const PROMETHEUS_2_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
/// Prometheus 3.x with its default scrape protocols (scrape/scrape.go, `acceptHeader`).
const PROMETHEUS_3_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// One answer over a fresh connection: status line, headers (names lowercased), body (chunks
/// joined).
struct Answer {
    status: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn request(e: &Exporter, method: &str, headers: &[(&str, &str)]) -> Answer {
    request_to(e.base.trim_start_matches("http://"), method, headers)
}

fn request_to(address: &str, method: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = TcpStream::connect(address).expect("connects");
    stream
        .set_read_timeout(Some(common::ms(10_000)))
        .expect("timeout");
    let mut head = format!("{method} /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    let head = String::from_utf8(raw[..split].to_vec()).expect("UTF-8 head");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked && method != "HEAD" {
        let mut body = Vec::new();
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size line");
            let size = std::str::from_utf8(&rest[..eol])
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .expect("hex chunk size");
            rest = &rest[eol + 2..];
            if size == 0 {
                break body;
            }
            body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    } else {
        rest.to_vec()
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// The system's gzip, a decoder independent of ours.
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("gzip ends");
    assert!(output.status.success(), "gzip -dc failed: not valid gzip");
    writer.join().expect("writer").expect("written");
    output.stdout
}

fn exporter() -> Exporter {
    // Exporter metrics count the requests, so that two answers would differ by them.
    Exporter::start(&[
        "--ecs.metadata-uri",
        &fixture("fargate"),
        "--web.disable-exporter-metrics",
    ])
}

#[test]
fn prometheus_gets_gzip_that_decompresses_to_the_identity_answer() {
    let e = exporter();
    let identity = request(&e, "GET", &[]);
    assert!(identity.status.contains(" 200 "), "{}", identity.status);
    assert_eq!(identity.header("content-encoding"), None);
    assert_eq!(identity.header("vary"), Some("Accept-Encoding"));
    assert!(identity.body.len() > 5000, "a real answer");
    for accept in [PROMETHEUS_2_ACCEPT, PROMETHEUS_3_ACCEPT] {
        let gz = request(
            &e,
            "GET",
            &[("Accept", accept), ("Accept-Encoding", "gzip")],
        );
        assert!(gz.status.contains(" 200 "), "{}", gz.status);
        assert_eq!(gz.header("content-encoding"), Some("gzip"), "{accept}");
        assert_eq!(gz.header("vary"), Some("Accept-Encoding"));
        assert_eq!(
            gz.header("content-type"),
            identity.header("content-type"),
            "the same text"
        );
        assert!(
            gz.body.len() * 3 < identity.body.len(),
            "compressed: {} of {} bytes",
            gz.body.len(),
            identity.body.len()
        );
        assert!(
            gunzip(&gz.body) == identity.body,
            "gzip -dc gives the identity answer"
        );
    }
}

#[test]
fn refusals_and_identity_only_clients_get_identity() {
    let e = exporter();
    let identity = request(&e, "GET", &[]).body;
    // Prometheus with `enable_compression: false`, a q=0 refusal, and promhttp's own choices.
    for accept_encoding in [
        "identity",
        "gzip;q=0",
        "*;q=0",
        "*",
        "gzip, identity",
        "GZIP",
    ] {
        let a = request(&e, "GET", &[("Accept-Encoding", accept_encoding)]);
        assert!(a.status.contains(" 200 "), "{}", a.status);
        assert_eq!(a.header("content-encoding"), None, "{accept_encoding}");
        assert!(a.body == identity, "{accept_encoding}: the identity answer");
    }
    // curl --compressed.
    let curl = request(&e, "GET", &[("Accept-Encoding", "deflate, gzip, br, zstd")]);
    assert_eq!(curl.header("content-encoding"), Some("gzip"));
}

#[test]
fn head_answers_as_get_would() {
    let e = exporter();
    for encoding in [None, Some("gzip")] {
        let headers: Vec<(&str, &str)> = encoding
            .map(|v| ("Accept-Encoding", v))
            .into_iter()
            .collect();
        let get = request(&e, "GET", &headers);
        let head = request(&e, "HEAD", &headers);
        assert_eq!(head.status, get.status);
        let without_date = |a: &Answer| {
            a.headers
                .iter()
                .filter(|(n, _)| n != "date")
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(without_date(&head), without_date(&get), "{encoding:?}");
        assert_eq!(head.header("content-encoding"), encoding);
        assert!(head.body.is_empty(), "HEAD has no body");
    }
}

/// xorshift64*, seeded: the same headers on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// An `Accept-Encoding` value of up to four elements: codings in and out of case, q-values well
/// and badly formed, other parameters, separators and spaces as clients and typos write them.
fn random_accept_encoding(rng: &mut Rng) -> String {
    const CODINGS: &[&str] = &[
        "gzip", "gzip", "identity", "*", "GZIP", "deflate", "br", "x-gzip", "", "gz ip",
    ];
    const PARAMETERS: &[&str] = &[";q=", "; q=", ";q =", ";Q=", ";level=", ";"];
    const VALUES: &[&str] = &["0", "1", "0.5", "0.001", "1.5", "05", "0.", "x", ""];
    const SEPARATORS: &[&str] = &[",", ", ", " , ", ",,", "\t,", " "];
    let mut value = String::new();
    for i in 0..rng.below(5) {
        if i > 0 {
            value.push_str(SEPARATORS[rng.below(SEPARATORS.len())]);
        }
        value.push_str(CODINGS[rng.below(CODINGS.len())]);
        if rng.below(2) == 0 {
            value.push_str(PARAMETERS[rng.below(PARAMETERS.len())]);
            value.push_str(VALUES[rng.below(VALUES.len())]);
        }
    }
    value.trim().to_owned()
}

/// The Go exporter v0.4.0 (its metadata endpoint unreachable: it still answers `/metrics`), or
/// `None` where it cannot run.
fn go_exporter() -> Option<Go> {
    let go = common::go::go_binary_if_runnable()?;
    Some(Go::start(&go, "http://127.0.0.1:9/v4", &[]))
}

/// Random `Accept-Encoding` values through the real binary: each answer is whole (gzip that
/// decompresses to the identity answer, or the identity answer), and its encoding is the one
/// the Go exporter chose for the same value (when ../shared's Go binary can run here).
#[test]
fn random_accept_encodings_get_what_go_gives_them() {
    let e = exporter();
    let identity = request(&e, "GET", &[]).body;
    let go = go_exporter();
    if go.is_none() {
        println!("SKIPPED the comparison with Go: ../shared's Go exporter cannot run here");
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut gzipped = 0;
    for _ in 0..300 {
        let value = random_accept_encoding(&mut rng);
        let headers = [("Accept-Encoding", value.as_str())];
        let ours = request(&e, "GET", &headers);
        assert!(ours.status.contains(" 200 "), "{value:?}: {}", ours.status);
        let encoding = ours.header("content-encoding");
        let body = match encoding {
            Some("gzip") => {
                gzipped += 1;
                gunzip(&ours.body)
            }
            None => ours.body.clone(),
            Some(other) => panic!("{value:?}: Content-Encoding {other}"),
        };
        assert!(body == identity, "{value:?}: the whole answer");
        if let Some(go) = &go {
            let theirs = request_to(go.address(), "GET", &headers);
            assert_eq!(
                encoding,
                theirs.header("content-encoding"),
                "Accept-Encoding {value:?}: ours against Go's"
            );
        }
    }
    assert!(
        gzipped > 20 && gzipped < 280,
        "both encodings drawn: {gzipped} gzip"
    );
}
