//! Log lines on stderr, in logfmt (`ts=... level=info msg="..." key=value`) or JSON lines,
//! written by hand: a logging framework would cost more than these forty lines.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

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

    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Logger {
    pub level: Level,
    pub format: Format,
}

impl Logger {
    pub fn enabled(&self, level: Level) -> bool {
        level >= self.level
    }

    /// Writes one line if `level` is enabled. Write errors are ignored: there is nowhere else to
    /// report them, and a closed stderr must not stop the exporter.
    pub fn log(&self, level: Level, msg: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
        if !self.enabled(level) {
            return;
        }
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let line = self.line(
            &crate::rfc3339::format_utc_millis(millis),
            level,
            msg,
            fields,
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn line(
        &self,
        ts: &str,
        level: Level,
        msg: &str,
        fields: &[(&str, &dyn std::fmt::Display)],
    ) -> String {
        let mut out = String::with_capacity(128);
        let all = [
            ("ts", &ts as &dyn std::fmt::Display),
            ("level", &level.name()),
            ("msg", &msg),
        ];
        for (i, (key, value)) in all.iter().chain(fields).enumerate() {
            let value = value.to_string();
            match self.format {
                Format::Logfmt => {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(key);
                    out.push('=');
                    logfmt_value(&mut out, &value);
                }
                Format::Json => {
                    out.push(if i == 0 { '{' } else { ',' });
                    json_string(&mut out, key);
                    out.push(':');
                    json_string(&mut out, &value);
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

/// Bare when it can be, quoted with Go-style escapes when it holds spaces, quotes, `=` or
/// control characters.
fn logfmt_value(out: &mut String, value: &str) {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| c > ' ' && c != '"' && c != '=' && c != '\\' && c != '\u{7f}');
    if bare {
        out.push_str(value);
    } else {
        json_string(out, value);
    }
}

fn json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' || c == '\u{7f}' => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_and_json_lines() {
        let logfmt = Logger {
            level: Level::Info,
            format: Format::Logfmt,
        };
        let err = "HTTP 500 \"oops\"\nmore";
        let line = logfmt.line(
            "T",
            Level::Warn,
            "metadata request failed",
            &[("endpoint", &"/task"), ("error", &err)],
        );
        assert_eq!(
            line,
            "ts=T level=warn msg=\"metadata request failed\" endpoint=/task error=\"HTTP 500 \\\"oops\\\"\\nmore\"\n"
        );
        let json = Logger {
            level: Level::Info,
            format: Format::Json,
        };
        let line = json.line("T", Level::Info, "a=b", &[("n", &3), ("empty", &"")]);
        assert_eq!(
            line,
            "{\"ts\":\"T\",\"level\":\"info\",\"msg\":\"a=b\",\"n\":\"3\",\"empty\":\"\"}\n"
        );
        assert!(!logfmt.enabled(Level::Debug));
        assert!(logfmt.enabled(Level::Error));
    }
}
