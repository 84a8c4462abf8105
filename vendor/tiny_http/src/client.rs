// CHANGED by the ecs_exporter project (Apache-2.0 4(b)): this file is new in its whole; it
// replaces tiny_http 0.12's `ClientConnection`. PATCHES.md says what each part fixes.
//
// One thread serves one connection, one request at a time: it waits for a request (idle), reads
// its head and body within the limits and the deadline, hands it over, waits for the answer,
// writes it within the deadline, and only then reads the next. Framing follows Go's net/http,
// which is what the clients of the servers built on this copy are used to.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::str::FromStr;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ascii::AsciiString;

use crate::connection::Connection;
use crate::{HTTPVersion, Header, HeaderField, Method, Phase, Request, ResponseBox, Shared};

/// A chunk-size line, or a trailer line, longer than this is malformed (Go allows 4 KiB).
const MAX_CHUNK_LINE: usize = 4096;

/// After an error answer, how long the connection is read and discarded before it is closed,
/// so that the client reads the answer rather than a reset (Go's net/http waits 500 ms).
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 256 * 1024;

/// Serves one connection until it ends; the server forgets it then.
pub(crate) fn serve(connection: &Arc<Connection>, id: u64, shared: &Shared) {
    let limits = shared.limits;
    let timeout = limits.timeout;
    let mut input = BufReader::with_capacity(
        4096,
        Input {
            connection,
            deadline: None,
        },
    );
    loop {
        // Idle: a connection waiting here is the first to be closed to admit another.
        if !shared.set_phase(id, Phase::Idle(Instant::now())) {
            break;
        }
        input.get_mut().deadline = timeout.map(|t| Instant::now() + t);
        match input.fill_buf() {
            Ok(buffer) if !buffer.is_empty() => {}
            _ => break,
        }
        if !shared.set_phase(id, Phase::Reading(Instant::now())) {
            break;
        }
        // The request, head and body, must arrive within one timeout of its first byte.
        input.get_mut().deadline = timeout.map(|t| Instant::now() + t);
        let mut is_head = false;
        let head = match read_request(&mut input, connection, &limits, &mut is_head) {
            Ok(head) => head,
            Err(Failure::Answer(answer)) => {
                refuse_with(connection, &answer, is_head, timeout);
                linger(&mut input);
                break;
            }
            Err(Failure::Closed) => break,
        };
        if !shared.set_phase(id, Phase::Handled) {
            break;
        }
        let (reply, answer) = mpsc::channel();
        let is_head = head.method == Method::Head;
        let version = head.version.clone();
        let keep_alive = head.keep_alive && !shared.closing();
        // What the answer's framing depends on (TE, the version), kept for the writer.
        let request_headers = head.headers.clone();
        shared.push(Request::new(
            head.method,
            head.target,
            head.version,
            head.headers,
            head.body,
            head.body_length,
            connection.peer_addr(),
            reply,
            Arc::downgrade(connection),
        ));
        // A dropped request sends a 500, so an answer always comes while the server lives.
        let response: ResponseBox = match answer.recv() {
            Ok(response) => response,
            Err(_) => break,
        };
        if !shared.set_phase(id, Phase::Writing(Instant::now())) {
            break;
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut output = std::io::BufWriter::with_capacity(
            4096,
            Output {
                connection,
                deadline,
            },
        );
        let written = response
            .raw_print(&mut output, version, &request_headers, is_head, None)
            .and_then(|()| output.flush());
        if written.is_err() {
            break;
        }
        if !keep_alive {
            // The last answer: let the client read it before the close (unread bytes from it
            // would otherwise make the close a reset, which can discard the answer).
            drop(output);
            linger(&mut input);
            break;
        }
    }
    shared.forget(id);
    let _ = connection.shutdown(Shutdown::Both);
}

/// Reads from the connection within a deadline: each read may wait only for what is left of it.
struct Input<'a> {
    connection: &'a Connection,
    deadline: Option<Instant>,
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            self.connection.set_read_timeout(Some(left));
        }
        let mut connection = self.connection;
        connection.read(buf)
    }
}

/// Writes to the connection within a deadline.
struct Output<'a> {
    connection: &'a Connection,
    deadline: Option<Instant>,
}

impl Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            self.connection.set_write_timeout(Some(left));
        }
        let mut connection = self.connection;
        connection.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A request read whole.
struct Head {
    method: Method,
    target: String,
    version: HTTPVersion,
    headers: Vec<Header>,
    body: Vec<u8>,
    body_length: Option<usize>,
    keep_alive: bool,
}

/// Why a request could not be read.
enum Failure {
    /// The client gets this answer, then the connection is closed.
    Answer(ErrorAnswer),
    /// Closed, timed out or broken: nothing can be answered.
    Closed,
}

/// An answer written by the connection itself, as Go's net/http writes its own: the status and
/// its reason (with what was wrong, where Go says it) on the status line and again as the body,
/// then the connection is closed.
struct ErrorAnswer {
    status: u16,
    text: &'static str,
    /// Where Go's body is not the status line's text.
    body: Option<&'static str>,
}

const fn answer(status: u16, text: &'static str) -> Failure {
    Failure::Answer(ErrorAnswer {
        status,
        text,
        body: None,
    })
}

const BAD_REQUEST: Failure = answer(400, "Bad Request");

impl From<std::io::Error> for Failure {
    fn from(_: std::io::Error) -> Failure {
        Failure::Closed
    }
}

/// Writes an error answer (no Content-Length: the close ends it, as Go's do), without its body
/// to a HEAD request.
fn refuse_with(
    connection: &Connection,
    answer: &ErrorAnswer,
    is_head: bool,
    timeout: Option<Duration>,
) {
    let body = if is_head {
        ""
    } else {
        answer.body.unwrap_or(answer.text)
    };
    let text = format!(
        "HTTP/1.1 {status} {text}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n{prefix}{body}",
        status = answer.status,
        text = answer.text,
        prefix = if answer.body.is_some() || is_head {
            String::new()
        } else {
            format!("{} ", answer.status)
        },
    );
    let mut output = Output {
        connection,
        deadline: Some(Instant::now() + timeout.unwrap_or(LINGER).min(LINGER)),
    };
    let _ = output.write_all(text.as_bytes());
}

/// Answers `503` to a connection the cap leaves no room for, without waiting for anything.
pub(crate) fn refuse(connection: &Connection) {
    connection.set_nonblocking(true);
    let mut connection = connection;
    let _ = connection.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
          Connection: close\r\n\r\n503 too many connections\n",
    );
    let _ = connection.shutdown(Shutdown::Write);
}

/// After an error answer: stops writing, and reads what the client still sends for a moment
/// (bounded), so that closing does not reset the connection before the client has read the
/// answer.
fn linger(input: &mut BufReader<Input<'_>>) {
    let _ = input.get_ref().connection.shutdown(Shutdown::Write);
    input.get_mut().deadline = Some(Instant::now() + LINGER);
    let mut discarded = 0;
    while discarded < LINGER_BYTES {
        match input.fill_buf() {
            Ok(buffer) if !buffer.is_empty() => {
                let n = buffer.len();
                input.consume(n);
                discarded += n;
            }
            _ => break,
        }
    }
}

/// Reads a line ending in LF (a CR before it is dropped) of at most `*budget` bytes, LF included;
/// what it reads is taken from the budget. Past it: `past`.
fn read_line(
    input: &mut BufReader<Input<'_>>,
    budget: &mut usize,
    past: Failure,
) -> Result<Vec<u8>, Failure> {
    let mut line = Vec::new();
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            return Err(Failure::Closed);
        }
        let (taken, done) = match buffer.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (buffer.len(), false),
        };
        if taken > *budget {
            return Err(past);
        }
        *budget -= taken;
        line.extend_from_slice(&buffer[..taken]);
        input.consume(taken);
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
    }
}

fn too_large_head() -> Failure {
    answer(431, "Request Header Fields Too Large")
}

/// Reads one request, head and body, as Go's net/http would accept it. `is_head` is set as
/// soon as the request line says HEAD, for an error answer to leave its body out.
fn read_request(
    input: &mut BufReader<Input<'_>>,
    connection: &Connection,
    limits: &crate::Limits,
    is_head: &mut bool,
) -> Result<Head, Failure> {
    let mut budget = limits.max_head;
    let line = read_line(input, &mut budget, too_large_head())?;
    let (method, target, version) = parse_request_line(&line)?;
    *is_head = method == Method::Head;

    let mut headers: Vec<Header> = Vec::new();
    loop {
        let line = read_line(input, &mut budget, too_large_head())?;
        if line.is_empty() {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            // obs-fold: a continuation of the previous header's value, as Go reads it.
            let previous = headers.last_mut().ok_or(BAD_REQUEST)?;
            let more = header_value(&line)?;
            let mut value = previous.value.as_str().to_owned();
            value.push(' ');
            value.push_str(more.as_str());
            previous.value = AsciiString::from_ascii(value).map_err(|_| BAD_REQUEST)?;
            continue;
        }
        headers.push(parse_header(&line)?);
    }

    let named = |name: &'static str| headers.iter().filter(move |h| h.field.equiv(name));
    // HTTP/1.1 requires exactly one Host (Go's answer, word for word).
    if version == HTTPVersion(1, 1) {
        match named("Host").count() {
            1 => {}
            0 => return Err(answer(400, "Bad Request: missing required Host header")),
            _ => return Err(answer(400, "Bad Request: too many Host headers")),
        }
    }

    // `100 Continue` is an HTTP/1.1 answer: a 1.0 client that asks for it just gets its body
    // read (Go).
    let expects_continue = match named("Expect").next() {
        None => false,
        Some(h) if h.value.as_str().eq_ignore_ascii_case("100-continue") => {
            version == HTTPVersion(1, 1)
        }
        Some(_) => return Err(answer(417, "Expectation Failed")),
    };

    // Framing. Transfer-Encoding: only one `chunked`, and it wins over Content-Length (RFC 9112
    // 6.3, and Go); anything else is 501 as Go answers it. Content-Length: digits only, and all
    // copies equal, or 400.
    // HTTP/1.0 has no Transfer-Encoding: Go ignores it there and frames by Content-Length, so
    // a 1.0 request's chunked "body" is never its body (golang/go#12785).
    let chunked = if version == HTTPVersion(1, 0) {
        false
    } else {
        let mut encodings = named("Transfer-Encoding");
        match (encodings.next(), encodings.next()) {
            (None, _) => false,
            (Some(h), None) if h.value.as_str().trim().eq_ignore_ascii_case("chunked") => true,
            _ => {
                return Err(Failure::Answer(ErrorAnswer {
                    status: 501,
                    text: "Not Implemented",
                    body: Some("Unsupported transfer encoding"),
                }))
            }
        }
    };
    let mut declared: Option<u64> = None;
    for h in named("Content-Length") {
        let length = parse_content_length(h.value.as_str()).ok_or(BAD_REQUEST)?;
        if declared.is_some_and(|d| d != length) {
            return Err(BAD_REQUEST);
        }
        declared = Some(length);
    }
    let declared = if chunked { None } else { declared };

    let keep_alive = {
        let connection_header = named("Connection")
            .next()
            .map(|h| h.value.as_str().to_ascii_lowercase());
        match connection_header {
            Some(ref v) if v.contains("close") || v.contains("upgrade") => false,
            Some(ref v) if version == HTTPVersion(1, 0) => v.contains("keep-alive"),
            None => version != HTTPVersion(1, 0),
            Some(_) => true,
        }
    };

    let too_large_body = || answer(413, "Request Entity Too Large");
    let mut body = Vec::new();
    if let Some(length) = declared {
        // Refused before a byte of it is read or allocated.
        if length > limits.max_body as u64 {
            return Err(too_large_body());
        }
        let length = length as usize;
        if length > 0 {
            if expects_continue {
                continue_(connection, limits)?;
            }
            body.reserve_exact(length);
            input.by_ref().take(length as u64).read_to_end(&mut body)?;
            if body.len() != length {
                return Err(Failure::Closed);
            }
        }
    } else if chunked {
        if expects_continue {
            continue_(connection, limits)?;
        }
        read_chunked(input, &mut body, limits, too_large_body)?;
    }

    Ok(Head {
        method,
        target,
        version,
        headers,
        body,
        body_length: declared.map(|d| d as usize),
        keep_alive,
    })
}

/// Tells a client that waits for it to send the body.
fn continue_(connection: &Connection, limits: &crate::Limits) -> Result<(), Failure> {
    let mut output = Output {
        connection,
        deadline: limits.timeout.map(|t| Instant::now() + t),
    };
    output.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    Ok(())
}

/// A chunked body, into `body`, at most `limits.max_body` bytes of data.
fn read_chunked(
    input: &mut BufReader<Input<'_>>,
    body: &mut Vec<u8>,
    limits: &crate::Limits,
    too_large: impl Fn() -> Failure,
) -> Result<(), Failure> {
    loop {
        let mut budget = MAX_CHUNK_LINE;
        let line = read_line(input, &mut budget, BAD_REQUEST)?;
        // Hex digits, then blanks and an extension (`;...`) that are skipped; nothing before
        // the digits (Go: "invalid byte in chunk length").
        let size = line.split(|&b| b == b';').next().unwrap_or(&[]);
        let size = std::str::from_utf8(size).map_err(|_| BAD_REQUEST)?;
        let size = size.trim_end_matches([' ', '\t']);
        if size.is_empty() || size.len() > 16 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BAD_REQUEST);
        }
        let size = u64::from_str_radix(size, 16).map_err(|_| BAD_REQUEST)?;
        if size == 0 {
            // Trailers, up to the blank line, within the head limit; their values are not kept.
            let mut budget = limits.max_head;
            while !read_line(input, &mut budget, too_large_head())?.is_empty() {}
            return Ok(());
        }
        if size > limits.max_body.saturating_sub(body.len()) as u64 {
            return Err(too_large());
        }
        let before = body.len();
        input.by_ref().take(size).read_to_end(body)?;
        if (body.len() - before) as u64 != size {
            return Err(Failure::Closed);
        }
        // The data ends with CRLF exactly (Go: "malformed chunked encoding" otherwise).
        let mut end = [0u8; 2];
        input.read_exact(&mut end)?;
        if &end != b"\r\n" {
            return Err(BAD_REQUEST);
        }
    }
}

/// `Content-Length`'s value: decimal digits only (after optional blanks), as Go.
fn parse_content_length(value: &str) -> Option<u64> {
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// `METHOD SP TARGET SP HTTP/d.d`, split as Go splits it (at the first two spaces).
fn parse_request_line(line: &[u8]) -> Result<(Method, String, HTTPVersion), Failure> {
    let line = std::str::from_utf8(line).map_err(|_| BAD_REQUEST)?;
    let (method, rest) = line.split_once(' ').ok_or(BAD_REQUEST)?;
    let (target, proto) = rest.split_once(' ').ok_or(BAD_REQUEST)?;
    let version = parse_http_version(proto).ok_or(BAD_REQUEST)?;
    if method.is_empty() || !method.bytes().all(is_token) {
        return Err(BAD_REQUEST);
    }
    if !valid_target(target) || (target == "*" && method != "OPTIONS") {
        return Err(BAD_REQUEST);
    }
    if version.0 != 1 {
        return Err(answer(
            505,
            "HTTP Version Not Supported: unsupported protocol version",
        ));
    }
    let method = Method::from_str(method).map_err(|()| BAD_REQUEST)?;
    // 1.2 and up are served as 1.1, as Go serves them.
    let version = if version.1 == 0 {
        HTTPVersion(1, 0)
    } else {
        HTTPVersion(1, 1)
    };
    Ok((method, target.to_owned(), version))
}

/// `HTTP/` and one digit, a dot, one digit.
fn parse_http_version(proto: &str) -> Option<HTTPVersion> {
    match proto.as_bytes() {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Some(HTTPVersion(major - b'0', minor - b'0'))
        }
        _ => None,
    }
}

/// Origin form (`/path`), `*`, or absolute form (`scheme:...`); no controls or blanks.
fn valid_target(target: &str) -> bool {
    if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return false;
    }
    if target.starts_with('/') || target == "*" {
        return true;
    }
    match target.split_once(':') {
        Some((scheme, _)) => {
            let mut bytes = scheme.bytes();
            bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
                && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        }
        None => false,
    }
}

/// RFC 9110's token characters (method and header names).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `Name: value`, the name a token, the value without controls other than tab.
fn parse_header(line: &[u8]) -> Result<Header, Failure> {
    let colon = line.iter().position(|&b| b == b':').ok_or(BAD_REQUEST)?;
    let (name, rest) = line.split_at(colon);
    if name.is_empty() || !name.iter().copied().all(is_token) {
        return Err(answer(400, "Bad Request: invalid header name"));
    }
    let value = header_value(rest.get(1..).unwrap_or(&[]))?;
    let field = HeaderField::from_bytes(name).map_err(|_| BAD_REQUEST)?;
    Ok(Header { field, value })
}

/// A header value without its surrounding blanks. Controls other than tab are refused (Go), and
/// so is any byte past ASCII (tiny_http keeps values as ASCII).
fn header_value(raw: &[u8]) -> Result<AsciiString, Failure> {
    let start = raw.iter().position(|&b| b != b' ' && b != b'\t');
    let value = match start {
        Some(start) => {
            let end = raw
                .iter()
                .rposition(|&b| b != b' ' && b != b'\t')
                .map_or(raw.len(), |e| e + 1);
            raw.get(start..end).unwrap_or(&[])
        }
        None => &[],
    };
    if value.iter().any(|&b| (b < b' ' && b != b'\t') || b >= 0x7f) {
        return Err(BAD_REQUEST);
    }
    AsciiString::from_ascii(value.to_vec()).map_err(|_| BAD_REQUEST)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn request_lines_as_go_splits_them() {
        let ok = |line: &str| parse_request_line(line.as_bytes()).is_ok();
        assert!(ok("GET /hello HTTP/1.1"));
        assert!(ok("get /hello HTTP/1.0"));
        assert!(ok("GET http://x/hello HTTP/1.1"));
        assert!(ok("OPTIONS * HTTP/1.1"));
        assert!(!ok("GET * HTTP/1.1"));
        assert!(ok("GET /hello HTTP/1.2"));
        assert!(!ok("GET /hello"));
        assert!(!ok("GET  HTTP/1.1"));
        assert!(!ok("GET /hello HTTP/1.1 extra"));
        assert!(!ok("G(T /hello HTTP/1.1"));
        assert!(!ok("GET hello HTTP/1.1"));
        assert!(!ok("GET /hello HTTP/x"));
        assert!(!ok("qsd qsd qsd"));
        match parse_request_line(b"GET /hello HTTP/2.0") {
            Err(Failure::Answer(a)) => assert_eq!(a.status, 505),
            _ => panic!("HTTP/2.0 is 505"),
        }
        match parse_request_line(b"GET /hello HTTP/0.9") {
            Err(Failure::Answer(a)) => assert_eq!(a.status, 505),
            _ => panic!("HTTP/0.9 is 505"),
        }
    }

    #[test]
    fn content_lengths_are_digits_only() {
        assert_eq!(parse_content_length("0"), Some(0));
        assert_eq!(parse_content_length(" 3 "), Some(3));
        assert_eq!(parse_content_length("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_content_length("18446744073709551616"), None);
        for bad in ["", "+3", "-1", "1x", "0x10", "1 2"] {
            assert_eq!(parse_content_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn header_lines() {
        assert!(parse_header(b"Host: x").is_ok());
        assert!(parse_header(b"Host:x").is_ok());
        assert_eq!(
            parse_header(b"X-A:  a b \t")
                .ok()
                .map(|h| h.value.to_string()),
            Some("a b".into())
        );
        assert!(parse_header(b"foo").is_err());
        assert!(parse_header(b"X-A : a").is_err());
        assert!(parse_header(b": a").is_err());
        assert!(parse_header(b"X-A: a\x00b").is_err());
        assert!(parse_header("X-A: é".as_bytes()).is_err());
    }
}
