//! Log lines on stderr, shaped as the Go exporter's (prometheus/common's promslog over Go's
//! slog) so that log-based checks and parsers keep working after a switch:
//!
//! ```text
//! time=2026-11-26T07:34:46.306Z level=INFO source=server.rs:120 msg="Listening on" address=[::]:9779
//! {"time":"2026-11-26T07:34:47.324764815Z","level":"WARN","source":"server.rs:411","msg":"...","n":3}
//! ```
//!
//! Keys `time`, `level`, `source`, `msg` in that order, then the fields; UTC; logfmt with exactly
//! three decimals, JSON with up to nine; upper-case levels; `source` is the file's base name and
//! line of the call, taken by the [`log!`](crate::log!) macro. Written by hand: a logging
//! framework would cost more than this file.

use std::fmt::{self, Display, Write as _};
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::rfc3339::{Fraction, format_utc};

/// Logs one line with the caller's file and line as `source`:
/// `log!(logger, Warn, "metadata request failed", "endpoint" = &endpoint, "up" = false)`.
/// A value passed by reference is text; a bool or an integer passed by value stays a JSON
/// boolean or number.
#[macro_export]
macro_rules! log {
    ($logger:expr, $level:ident, $msg:expr $(, $key:literal = $value:expr)* $(,)?) => {
        $logger.log(
            $crate::log::Level::$level,
            (file!(), line!()),
            $msg,
            &[$(($key, $crate::log::Value::from($value))),*],
        )
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub const NAMES: &'static str = "debug, info, warn, error";

    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" => Level::Warn,
            "error" => Level::Error,
            _ => return None,
        })
    }

    /// As slog writes it.
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Logfmt,
    Json,
}

impl Format {
    pub const NAMES: &'static str = "logfmt, json";

    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "logfmt" => Some(Format::Logfmt),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// A field's value. Text is quoted in JSON (and in logfmt where it must be); numbers and
/// booleans are written bare in both.
#[derive(Clone, Copy)]
pub enum Value<'a> {
    Str(&'a str),
    Text(&'a dyn Display),
    // Two 64-bit variants rather than one i128: formatting an i128 is code of its own.
    Int(i64),
    UInt(u64),
    Bool(bool),
}

impl<'a, T: Display> From<&'a T> for Value<'a> {
    fn from(v: &'a T) -> Self {
        Value::Text(v)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Str(v)
    }
}

impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

macro_rules! int_values {
    ($variant:ident as $wide:ty: $($t:ty),*) => {$(
        impl From<$t> for Value<'_> {
            fn from(v: $t) -> Self {
                Value::$variant(v as $wide)
            }
        }
    )*};
}
int_values!(UInt as u64: u16, u32, u64, usize);
int_values!(Int as i64: i32, i64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Logger {
    pub level: Level,
    pub format: Format,
}

impl Logger {
    pub fn enabled(&self, level: Level) -> bool {
        level >= self.level
    }

    /// Writes one line if `level` is enabled; `source` is `(file!(), line!())` of the caller
    /// (use the [`log!`](crate::log!) macro). Write errors are ignored: there is nowhere else
    /// to report them, and a closed stderr must not stop the exporter.
    pub fn log(&self, level: Level, source: (&str, u32), msg: &str, fields: &[(&str, Value)]) {
        if !self.enabled(level) {
            return;
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let line = self.line(nanos, level, source, msg, fields);
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn line(
        &self,
        unix_nanos: i128,
        level: Level,
        (file, line): (&str, u32),
        msg: &str,
        fields: &[(&str, Value)],
    ) -> String {
        let fraction = match self.format {
            Format::Logfmt => Fraction::Millis,
            Format::Json => Fraction::NanosTrimmed,
        };
        let time = format_utc(unix_nanos, fraction);
        let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
        let source = format_args!("{base}:{line}");
        let head = [
            ("time", Value::Str(&time)),
            ("level", Value::Str(level.name())),
            ("source", Value::Text(&source)),
            ("msg", Value::Str(msg)),
        ];
        let mut out = String::with_capacity(160);
        let mut text = String::new();
        for (i, (key, value)) in head.iter().chain(fields).enumerate() {
            match self.format {
                Format::Logfmt if i > 0 => out.push(' '),
                Format::Logfmt => {}
                Format::Json => out.push(if i == 0 { '{' } else { ',' }),
            }
            match self.format {
                Format::Logfmt => out.push_str(key),
                Format::Json => json_string(&mut out, key),
            }
            out.push(if self.format == Format::Json {
                ':'
            } else {
                '='
            });
            match *value {
                Value::Int(n) => {
                    let _ = write!(out, "{n}");
                }
                Value::UInt(n) => {
                    let _ = write!(out, "{n}");
                }
                Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
                Value::Str(s) => match self.format {
                    Format::Logfmt => logfmt_value(&mut out, s),
                    Format::Json => json_string(&mut out, s),
                },
                Value::Text(t) => {
                    text.clear();
                    let _ = write!(text, "{t}");
                    match self.format {
                        Format::Logfmt => logfmt_value(&mut out, &text),
                        Format::Json => json_string(&mut out, &text),
                    }
                }
            }
        }
        if self.format == Format::Json {
            out.push('}');
        }
        out.push('\n');
        out
    }
}

/// Bare unless slog's text handler would quote it (empty, or a space, `=`, `"` or a control
/// character in it); quoted as Go's `strconv.Quote` does.
fn logfmt_value(out: &mut String, value: &str) {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| c > ' ' && c != '"' && c != '=' && c != '\u{7f}');
    if bare {
        out.push_str(value);
    } else {
        quoted(out, value, Format::Logfmt);
    }
}

fn json_string(out: &mut String, value: &str) {
    quoted(out, value, Format::Json);
}

/// `value` in double quotes with `"`, `\` and control characters escaped: as Go's
/// `strconv.Quote` for logfmt (`\x01`, and DEL escaped too), as JSON for JSON (`\u0001`).
fn quoted(out: &mut String, value: &str, format: Format) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' && format == Format::Json => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if (c < ' ' || c == '\u{7f}') && format == Format::Logfmt => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Lets a value that is only [`fmt::Debug`] (a `Duration`) be logged as text.
pub struct Debug<T>(pub T);

impl<T: fmt::Debug> Display for Debug<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i128 = 1_764_142_486_306_123_400;

    #[test]
    fn logfmt_lines_as_promslog_writes_them() {
        let logfmt = Logger {
            level: Level::Info,
            format: Format::Logfmt,
        };
        let err = "HTTP 500 \"oops\"\nmore";
        let line = logfmt.line(
            T,
            Level::Warn,
            ("src/server.rs", 42),
            "metadata request failed",
            &[
                ("endpoint", Value::from("/task")),
                ("error", Value::from(err)),
                ("path", Value::from("C:\\x")),
                ("http2", Value::from(false)),
                ("ctl", Value::from("a\u{1}\u{7f}")),
            ],
        );
        assert_eq!(
            line,
            "time=2025-11-26T07:34:46.306Z level=WARN source=server.rs:42 \
             msg=\"metadata request failed\" endpoint=/task error=\"HTTP 500 \\\"oops\\\"\\nmore\" \
             path=C:\\x http2=false ctl=\"a\\x01\\x7f\"\n"
        );
        assert!(!logfmt.enabled(Level::Debug));
        assert!(logfmt.enabled(Level::Error));
    }

    #[test]
    fn json_lines_keep_numbers_and_booleans() {
        let json = Logger {
            level: Level::Info,
            format: Format::Json,
        };
        let line = json.line(
            T,
            Level::Info,
            ("server.rs", 7),
            "TLS is disabled.",
            &[
                ("http2", Value::from(false)),
                ("n", Value::from(3usize)),
                ("empty", Value::from("")),
                ("ctl", Value::from("\u{1}")),
            ],
        );
        assert_eq!(
            line,
            "{\"time\":\"2025-11-26T07:34:46.3061234Z\",\"level\":\"INFO\",\"source\":\"server.rs:7\",\
             \"msg\":\"TLS is disabled.\",\"http2\":false,\"n\":3,\"empty\":\"\",\"ctl\":\"\\u0001\"}\n"
        );
    }
}
