//! A real Prometheus (Debian's package) for a test: started on a config, asked through its HTTP
//! API, killed when dropped.

use std::io::BufReader;
use std::process::{Command, Stdio};
use std::time::Duration;

use miniserde::json::{self, Value};

use super::{ChildGuard, TempDir};

pub struct Prometheus {
    _server: ChildGuard,
    pub url: String,
}

impl Prometheus {
    /// Prometheus on `config` (YAML), storing under `tmp`, listening on a port of its own
    /// (`:0`, the address it logs), once it answers queries.
    pub fn start(config: &str, tmp: &TempDir) -> Prometheus {
        let file = tmp.0.join("prometheus.yml");
        std::fs::write(&file, config).expect("prometheus.yml");
        Prometheus::start_on(&file, tmp)
    }

    /// [`Prometheus::start`] on a config file already written.
    pub fn start_on(file: &std::path::Path, tmp: &TempDir) -> Prometheus {
        let mut server = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.0.join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("prometheus starts");
        let mut stderr = BufReader::new(server.stderr.take().expect("stderr piped"));
        let (text, addresses) = super::read_until(&mut stderr, "Listening on");
        let server = ChildGuard(server);
        let Some(address) = addresses.first().cloned() else {
            panic!("Prometheus did not start: {text}");
        };
        // Drained so that Prometheus never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let prometheus = Prometheus {
            _server: server,
            url: format!("http://{address}"),
        };
        super::wait_until(
            "Prometheus answers queries",
            super::bound(Duration::from_secs(30)),
            || prometheus.query("vector(1)").is_ok(),
        );
        prometheus
    }

    /// `data` of an API GET (`path` with its query string), or what went wrong.
    pub fn api(&self, path: &str) -> Result<Value, String> {
        let response = minreq::get(format!("{}{path}", self.url))
            .with_timeout(super::ms(5000).as_secs())
            .send()
            .map_err(|e| e.to_string())?;
        let body = response.as_str().map_err(|e| e.to_string())?;
        let value: Value = json::from_str(body).map_err(|_| format!("not JSON: {body}"))?;
        if text(field(&value, "status")) != "success" {
            return Err(format!("{path}: {body}"));
        }
        field(&value, "data")
            .cloned()
            .ok_or_else(|| format!("no data: {body}"))
    }

    /// `data.result` of an instant query.
    pub fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let data = self.api(&format!("/api/v1/query?query={}", url_encode(promql)))?;
        match field(&data, "result") {
            Some(Value::Array(result)) => Ok(result.to_vec()),
            _ => Err(format!("{promql}: no result")),
        }
    }
}

/// A field of a JSON object.
pub fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(o) => o.get(key),
        _ => None,
    }
}

/// A JSON string, or "" for anything else.
pub fn text(v: Option<&Value>) -> &str {
    match v {
        Some(Value::String(s)) => s,
        _ => "",
    }
}

/// The value of one instant query result (`value: [time, "1.5"]`).
pub fn sample_value(result: &Value) -> Option<f64> {
    match field(result, "value") {
        Some(Value::Array(pair)) => text(pair.get(1)).parse().ok(),
        _ => None,
    }
}

pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
