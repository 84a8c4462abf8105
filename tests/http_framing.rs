//! Issue 26's item 9: requests framed oddly are answered as Go's net/http answers them, so that
//! a proxy in front and the exporter never disagree on where one request ends (request
//! smuggling). Each case's Go answer was observed from the Go exporter v0.4.0 in
//! `../shared/reference/` (go1.24.4's net/http) and is written in the table; a test runs Go
//! beside us, where it can, to keep the table true. Where the HTTP promise (docs/design.md)
//! sets a smaller limit than Go's (a 16 KiB head, where Go takes 1 MiB; a 16 KiB body, where Go
//! reads what the handler reads), the table says both.

mod common;

use std::net::Shutdown;

use common::go::{Go, go_binary};
use common::raw::{Conn, End};
use common::{Endpoint, Exporter, fixture};

/// One raw request and what comes of it, written as the statuses answered in order, then
/// `open` (a next request on the connection is answered), `closed` (the server closed it) or
/// `hung` (nothing within the read timeout).
struct Case {
    name: &'static str,
    request: Vec<u8>,
    /// The client shuts its writing side after the request (no probe follows).
    shut: bool,
    /// What we must answer: one of these.
    ours: &'static [&'static str],
    /// What Go v0.4.0 answered.
    go: &'static str,
}

const PROBE: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";

fn case(
    name: &'static str,
    request: &[u8],
    ours: &'static [&'static str],
    go: &'static str,
) -> Case {
    Case {
        name,
        request: request.to_vec(),
        shut: false,
        ours,
        go,
    }
}

fn cases() -> Vec<Case> {
    let big_header = [
        &b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: "[..],
        &[b'a'; 20 * 1024],
        b"\r\n\r\n",
    ]
    .concat();
    let pipelined_big = [&b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"[..], &big_header].concat();
    let big_body = [
        &b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 20480\r\n\r\n"[..],
        &[b'a'; 20 * 1024],
    ]
    .concat();
    vec![
        case(
            "two differing Content-Lengths",
            b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            &["400 closed"],
            "400 closed",
        ),
        case(
            "the same Content-Length twice",
            b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
            &["200 open"],
            "200 open",
        ),
        // Were Content-Length to win, the server would wait for 4 more bytes; chunked wins, and
        // what follows the last chunk is the next request.
        case(
            "Content-Length with Transfer-Encoding: chunked",
            b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n\
              0\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
            &["200 404 open"],
            "200 404 open",
        ),
        case(
            "Transfer-Encoding: chunked on a GET",
            b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            &["200 open"],
            "200 open",
        ),
        case(
            "Transfer-Encoding: gzip",
            b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            &["501 closed"],
            "501 closed",
        ),
        case(
            "Transfer-Encoding: gzip, chunked",
            b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            &["501 closed"],
            "501 closed",
        ),
        // HTTP/1.0 has no Transfer-Encoding: Go frames by Content-Length, so the five bytes
        // are the body, and no request hides in them.
        case(
            "HTTP/1.0 with Transfer-Encoding: chunked and Content-Length",
            b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\
              Content-Length: 5\r\n\r\n0\r\n\r\n",
            &["200 open"],
            "200 open",
        ),
        // Chunk data must end with CRLF, a chunk size must start with a digit: Go refuses the
        // body (after answering, as its handler did not read it); we refuse before answering.
        case(
            "a bare LF after chunk data",
            b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\n0\r\n\r\n",
            &["400 closed"],
            "200 closed",
        ),
        case(
            "a blank before a chunk size",
            b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nabcde\r\n0\r\n\r\n",
            &["400 closed"],
            "200 closed",
        ),
        // The chunk never ends: the request after it in the body must never be answered.
        Case {
            name: "an unterminated chunked body holding GET /metrics",
            request: b"GET /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                       40\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                .to_vec(),
            shut: true,
            ours: &["closed", "hung", "400 closed", "404 closed"],
            go: "404 closed",
        },
        case(
            "bare LF line ends",
            b"GET /health HTTP/1.1\nHost: x\n\n",
            &["200 open"],
            "200 open",
        ),
        case(
            "HTTP/2.0",
            b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n",
            &["505 closed"],
            "505 closed",
        ),
        case(
            "HTTP/0.9",
            b"GET /health HTTP/0.9\r\nHost: x\r\n\r\n",
            &["505 closed"],
            "505 closed",
        ),
        case(
            "HTTP/1.0 without Host",
            b"GET /health HTTP/1.0\r\n\r\n",
            &["200 closed"],
            "200 closed",
        ),
        case(
            "HTTP/1.1 without Host",
            b"GET /health HTTP/1.1\r\n\r\n",
            &["400 closed"],
            "400 closed",
        ),
        case(
            "a header line without a colon",
            b"GET /health HTTP/1.1\r\nHost: x\r\nNo-Colon-Header\r\n\r\n",
            &["400 closed"],
            "400 closed",
        ),
        case(
            "a space before a header's colon",
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n",
            &["400 closed"],
            "400 closed",
        ),
        case(
            "obs-fold (a header continued on the next line)",
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
            &["200 open"],
            "200 open",
        ),
        case(
            "Content-Length: -5",
            b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            &["400 closed"],
            "400 closed",
        ),
        case(
            "Content-Length: +5",
            b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nabcde",
            &["400 closed"],
            "400 closed",
        ),
        case(
            "two spaces in the request line",
            b"GET  /health HTTP/1.1\r\nHost: x\r\n\r\n",
            &["400 closed"],
            "400 closed",
        ),
        case("a request line of one word", b"GARBAGE\r\n\r\n", &["400 closed"], "400 closed"),
        // The promise's limits, smaller than Go's (Go's head limit is 1 MiB and 4 KiB).
        case(
            "a 20 KiB header",
            &big_header,
            &["431 closed"],
            "200 open",
        ),
        case(
            "GET /health, then a 20 KiB header, pipelined",
            &pipelined_big,
            &["200 431 closed"],
            "200 200 open",
        ),
        case("a 20 KiB body", &big_body, &["413 closed"], "200 open"),
        // Go answers before it reads a body it has no use for, then closes.
        case(
            "Content-Length: 100000000000000, no body",
            b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000000\r\n\r\n",
            &["413 closed"],
            "200 closed",
        ),
        case(
            "Content-Length: 18446744073709551615, no body",
            b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n",
            &["413 closed"],
            "400 closed",
        ),
    ]
}

/// What `base` makes of `case`: the statuses it answers (as many as the table expects at most),
/// then whether the connection is open, closed or hung.
fn outcome(base: &str, case: &Case, expected: &str) -> String {
    let wanted = expected
        .split(' ')
        .filter(|w| w.parse::<u16>().is_ok())
        .count();
    // Long enough for any answer to come (one that would come later counts as hung).
    let mut c = Conn::open(base, common::ms(600));
    let mut words = Vec::new();
    c.send(&case.request);
    if case.shut {
        let _ = c.stream.shutdown(Shutdown::Write);
    }
    let mut answers = 0;
    loop {
        if answers == wanted && !case.shut {
            // A next request on the same connection tells open from closed.
            if !c.send(PROBE) {
                words.push("closed".to_owned());
                break;
            }
        }
        match c.answer() {
            Ok(a) if answers == wanted && !case.shut => {
                words.push(if a.status == 200 && a.body == b"ok" {
                    "open".to_owned()
                } else {
                    format!("{} (to the probe)", a.status)
                });
                break;
            }
            Ok(a) => {
                answers += 1;
                words.push(a.status.to_string());
            }
            Err(End::Closed) => {
                words.push("closed".to_owned());
                break;
            }
            Err(End::TimedOut) => {
                words.push("hung".to_owned());
                break;
            }
            Err(End::Garbled(text)) => {
                words.push(format!("garbled {:?}", &text[..text.len().min(80)]));
                break;
            }
        }
    }
    words.join(" ")
}

#[test]
fn odd_framing_is_answered_as_the_promise_and_go_say() {
    let mut wrong = Vec::new();
    for case in cases() {
        // One exporter a case: a case that ends the process (today's huge Content-Length) must
        // not fail the others.
        let mut e = Exporter::start(&["--ecs.metadata-uri", &fixture("fargate")]);
        let got = outcome(&e.base, &case, case.ours[0]);
        if !case.ours.contains(&got.as_str()) {
            wrong.push(format!(
                "{}: {got:?}, not {:?} (Go: {:?})",
                case.name, case.ours, case.go
            ));
        }
        // A fresh /health answered, then the process still there.
        let health = minreq::get(format!("{}/health", e.base))
            .with_timeout(common::ms(5000).as_secs())
            .send();
        if health.is_err() || !e.alive() {
            wrong.push(format!("{}: the process ended: {}", case.name, e.log()));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cases:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
#[cfg_attr(
    no_go_reference,
    ignore = "the Go exporter in ../shared/reference cannot run here (absent, or not amd64)"
)]
fn the_tables_go_answers_are_what_go_answers() {
    let endpoint = Endpoint::fixture("fargate");
    let go = Go::start(&go_binary(), &endpoint.base, &[]);
    let mut wrong = Vec::new();
    for case in cases() {
        let got = outcome(go.address(), &case, case.go);
        if got != case.go {
            wrong.push(format!(
                "{}: Go answers {got:?}, the table says {:?}",
                case.name, case.go
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cases:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
