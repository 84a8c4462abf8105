//! Fetching the task metadata endpoint v4: the exporter's only network client.
//!
//! Each request has a deadline (`--ecs.timeout`, enforced by minreq over connect, request and
//! the whole body) and a body cap ([`Endpoint::max_body`]), so a slow, silent or endless
//! endpoint costs one timeout and a bounded number of MiB, never a wedged or bloated exporter.
//! A local directory can stand in for the endpoint (for trying the exporter on fixtures); it is
//! read on every scrape with the same cap.

pub(crate) mod url;

use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// The largest body read from `/task` or `/task/stats`. A 10-container task's `/task/stats` is
/// tens of KiB; 4 MiB leaves room for a hundred containers and bounds what a broken endpoint can
/// make us hold.
pub(crate) const MAX_BODY: u64 = 4 * 1024 * 1024;

/// The largest body read from `/tasks` or `/tasks/stats`, which hold every task of an instance:
/// sized from the bodies for 100 tasks of 10 containers that docs/footprint.md measures (past
/// [`MAX_BODY`]), with room for several times them.
pub(crate) const MAX_INSTANCE_BODY: u64 = 16 * 1024 * 1024;

/// Which documents a scrape reads: one task's or every task's on the instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// `/task` and `/task/stats`: the task the exporter runs in (a sidecar).
    #[default]
    Task,
    /// `/tasks` and `/tasks/stats`: every task on the instance (a managed daemon on ECS Managed
    /// Instances; other agents answer them with an error).
    Instance,
}

impl Scope {
    pub const NAMES: &str = "task, instance";

    pub fn parse(name: &str) -> Option<Scope> {
        match name {
            "task" => Some(Scope::Task),
            "instance" => Some(Scope::Instance),
            _ => None,
        }
    }

    /// The task document(s) and the stats document(s) of this scope.
    pub fn endpoints(self) -> (Endpoint, Endpoint) {
        match self {
            Scope::Task => (Endpoint::Task, Endpoint::Stats),
            Scope::Instance => (Endpoint::Tasks, Endpoint::TasksStats),
        }
    }
}

/// Where metadata comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The endpoint's base URL (`ECS_CONTAINER_METADATA_URI_V4`), without a trailing slash.
    Http(String),
    /// A directory holding `task.json` and `stats.json` (instance scope: `tasks.json` and
    /// `tasks-stats.json`).
    Dir(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Http(url) => f.write_str(url),
            Source::Dir(dir) => write!(f, "{}", dir.display()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Task,
    Stats,
    Tasks,
    TasksStats,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Task => "/task",
            Endpoint::Stats => "/task/stats",
            Endpoint::Tasks => "/tasks",
            Endpoint::TasksStats => "/tasks/stats",
        }
    }

    /// The file that stands in for it in a `--ecs.metadata-uri` directory.
    pub fn file(self) -> &'static str {
        match self {
            Endpoint::Task => "task.json",
            Endpoint::Stats => "stats.json",
            Endpoint::Tasks => "tasks.json",
            Endpoint::TasksStats => "tasks-stats.json",
        }
    }

    /// The largest body read from this endpoint.
    pub fn max_body(self) -> u64 {
        match self {
            Endpoint::Task | Endpoint::Stats => MAX_BODY,
            Endpoint::Tasks | Endpoint::TasksStats => MAX_INSTANCE_BODY,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// minreq's reason phrase for an answer that had no status line, which it reports as a 503.
const NO_STATUS_LINE: &str = "Server did not provide a status line";

/// Why a fetch failed.
#[derive(Debug)]
pub enum FetchError {
    /// Connecting, sending or reading failed, or the deadline passed.
    Request(minreq::Error),
    /// The endpoint answered with a status other than 200, and this reason phrase.
    Status(u16, String),
    /// The endpoint answered with a redirect, to this location (none: empty). Redirects are
    /// not followed: the agent never sends one, and the task's metadata is nowhere else.
    Redirect(u16, String),
    /// No HTTP status line came back: the connection closed at once, or what came was not HTTP
    /// (minreq reports either as a 503 with a phrase of its own).
    NoStatusLine,
    /// The connection closed before the body's Content-Length was reached.
    CutShort { got: usize, promised: usize },
    /// The body was larger than this many bytes ([`Endpoint::max_body`]).
    TooLarge(u64),
    /// The stand-in file could not be read.
    File(PathBuf, std::io::Error),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Request(e) => write!(f, "request failed: {e}"),
            FetchError::Status(429, _) => f.write_str(
                "HTTP 429: rate limited by the ECS agent (too many metadata requests in this task)",
            ),
            FetchError::Status(code @ 100..=199, reason) => write!(
                f,
                "HTTP {code} ({reason}): an interim response, which the exporter does not skip \
                 (the ECS agent never sends one)"
            ),
            FetchError::Status(code, reason) if reason.is_empty() => write!(f, "HTTP {code}"),
            FetchError::Status(code, reason) => write!(f, "HTTP {code} ({reason})"),
            FetchError::Redirect(code, location) => write!(
                f,
                "HTTP {code}: a redirect to {location:?}, not followed (the ECS agent never \
                 redirects)"
            ),
            FetchError::NoStatusLine => f.write_str(
                "no HTTP status line came back (the connection closed, or the answer was not HTTP)",
            ),
            FetchError::CutShort { got, promised } => write!(
                f,
                "the connection closed after {got} of the {promised} bytes its Content-Length \
                 promised"
            ),
            FetchError::TooLarge(limit) => {
                write!(f, "response body larger than {} MiB", limit >> 20)
            }
            FetchError::File(path, e) => write!(f, "cannot read {}: {e}", path.display()),
        }
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FetchError::Request(e) => Some(e),
            FetchError::File(_, e) => Some(e),
            _ => None,
        }
    }
}

/// Fetches one document's body.
pub(crate) fn fetch(
    source: &Source,
    endpoint: Endpoint,
    timeout: Duration,
) -> Result<String, FetchError> {
    let mut body = Vec::new();
    match source {
        Source::Http(base) => {
            let url = format!("{base}{}", endpoint.path());
            let response = minreq::get(url)
                // minreq counts in whole seconds; the CLI only accepts whole seconds.
                .with_timeout(timeout.as_secs().max(1))
                .with_follow_redirects(false)
                .send_lazy()
                .map_err(FetchError::Request)?;
            let header = |name: &str| {
                let mut headers = response.headers.iter();
                let found = headers.find(|(k, _)| k.eq_ignore_ascii_case(name));
                found.map(|(_, v)| v.clone())
            };
            match response.status_code {
                200 => {}
                503 if response.reason_phrase == NO_STATUS_LINE => {
                    return Err(FetchError::NoStatusLine);
                }
                code @ 300..=399 => {
                    let location = header("location").unwrap_or_default();
                    return Err(FetchError::Redirect(code, location));
                }
                code => return Err(FetchError::Status(code, response.reason_phrase)),
            }
            // minreq ends a body at the close even when its Content-Length promised more.
            let promised = header("content-length").and_then(|l| l.trim().parse::<usize>().ok());
            read_capped(response, endpoint.max_body(), &mut body).map_err(|e| match e {
                BodyError::TooLarge => FetchError::TooLarge(endpoint.max_body()),
                BodyError::Io(e) => FetchError::Request(minreq::Error::IoError(e)),
            })?;
            if let Some(promised) = promised.filter(|&p| body.len() < p) {
                let got = body.len();
                return Err(FetchError::CutShort { got, promised });
            }
        }
        Source::Dir(dir) => {
            let path = dir.join(endpoint.file());
            let file = std::fs::File::open(&path).map_err(|e| FetchError::File(path.clone(), e))?;
            read_capped(file, endpoint.max_body(), &mut body).map_err(|e| match e {
                BodyError::TooLarge => FetchError::TooLarge(endpoint.max_body()),
                BodyError::Io(e) => FetchError::File(path, e),
            })?;
        }
    }
    Ok(into_text(body))
}

/// The body as text, each byte that is not part of valid UTF-8 replaced by `?` in place, so that
/// only the string holding it changes (outside a string it makes the JSON malformed anyway) and
/// no body costs more than its size. (Go's decoder writes U+FFFD, three bytes for one; the agent
/// never sends such bytes, as Go's encoder replaces them.)
fn into_text(mut body: Vec<u8>) -> String {
    let mut from = 0;
    while let Err(e) = std::str::from_utf8(body.get(from..).unwrap_or_default()) {
        let bad = from + e.valid_up_to();
        let end = e.error_len().map_or(body.len(), |len| bad + len);
        body.get_mut(bad..end)
            .into_iter()
            .flatten()
            .for_each(|b| *b = b'?');
        from = end;
    }
    String::from_utf8(body).unwrap_or_default()
}

/// Why a body could not be read whole within its cap.
enum BodyError {
    TooLarge,
    Io(std::io::Error),
}

fn read_capped(reader: impl Read, cap: u64, body: &mut Vec<u8>) -> Result<(), BodyError> {
    // One byte past the cap tells "exactly the cap" from "more than the cap".
    reader
        .take(cap + 1)
        .read_to_end(body)
        .map_err(BodyError::Io)?;
    if body.len() as u64 > cap {
        return Err(BodyError::TooLarge);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_that_are_not_utf8_become_question_marks_in_place() {
        let rows: &[(&[u8], &str)] = &[
            (b"{\"a\": \"ok\"}", "{\"a\": \"ok\"}"),
            (b"{\"a\": \"\xff\xfe\"}", "{\"a\": \"??\"}"),
            ("{\"a\": \"\u{fc}\"}".as_bytes(), "{\"a\": \"\u{fc}\"}"),
            (b"x\xe2\x82", "x??"),
            (b"\xe2\x82\xacx\xc3", "\u{20ac}x?"),
        ];
        for &(body, want) in rows {
            assert_eq!(into_text(body.to_vec()), want, "{body:?}");
        }
    }

    /// What the warning line says: the reason phrase when the endpoint sent one, never "()".
    #[test]
    fn status_errors_name_the_code_and_the_reason_if_any() {
        let rows = [
            (FetchError::Status(500, String::new()), "HTTP 500"),
            (
                FetchError::Status(503, "Service Unavailable".into()),
                "HTTP 503 (Service Unavailable)",
            ),
            (
                FetchError::Status(429, "Too Many Requests".into()),
                "HTTP 429: rate limited by the ECS agent (too many metadata requests in this task)",
            ),
            (
                FetchError::TooLarge(MAX_BODY),
                "response body larger than 4 MiB",
            ),
            (
                FetchError::TooLarge(MAX_INSTANCE_BODY),
                "response body larger than 16 MiB",
            ),
            (
                FetchError::Status(100, "Continue".into()),
                "HTTP 100 (Continue): an interim response, which the exporter does not skip (the ECS agent never sends one)",
            ),
            (
                FetchError::Redirect(302, "http://x/".into()),
                "HTTP 302: a redirect to \"http://x/\", not followed (the ECS agent never redirects)",
            ),
            (
                FetchError::NoStatusLine,
                "no HTTP status line came back (the connection closed, or the answer was not HTTP)",
            ),
            (
                FetchError::CutShort {
                    got: 10,
                    promised: 20,
                },
                "the connection closed after 10 of the 20 bytes its Content-Length promised",
            ),
        ];
        for (error, want) in rows {
            assert_eq!(error.to_string(), want);
        }
    }
}
