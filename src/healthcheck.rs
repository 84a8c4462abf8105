//! `ecs_exporter --health-check`: a health check for images without a shell or curl.
//!
//! GETs `/health` on the address the server listens on and reports in one line. Plain std
//! sockets with sub-second timeouts: it must answer well within an ECS health check's timeout.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::config::ListenAddress;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Checks the local listener; `Ok` holds the line to print on success, `Err` the reason.
pub fn check(listen: &ListenAddress) -> Result<String, String> {
    // An unspecified address listens on loopback too.
    let host = match listen.host.as_str() {
        "" | "0.0.0.0" | "::" => "127.0.0.1",
        host => host,
    };
    let target = ListenAddress {
        host: host.to_owned(),
        port: listen.port,
    };
    let url = format!("http://{target}/health");
    let fail = |what: String| format!("unhealthy: {url}: {what}");
    let address = (host, listen.port)
        .to_socket_addrs()
        .map_err(|e| fail(format!("cannot resolve: {e}")))?
        .next()
        .ok_or_else(|| fail("no address".into()))?;
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)
        .map_err(|e| fail(timed_out(e, "could not connect")))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| fail(e.to_string()))?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(|e| fail(e.to_string()))?;
    let request = format!("GET /health HTTP/1.0\r\nHost: {target}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| fail(timed_out(e, "could not send the request")))?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => return Err(fail(timed_out(e, "no answer"))),
        }
    }
    let status_line = String::from_utf8_lossy(&head[..len]);
    let status = status_line.split_whitespace().nth(1).unwrap_or("no status");
    if status == "200" {
        Ok(format!("ok: {url} answered 200"))
    } else {
        Err(fail(format!("answered {status}")))
    }
}

/// An I/O error in words; a timeout as what did not happen in time (a socket timeout reads as
/// "Resource temporarily unavailable" otherwise).
fn timed_out(e: std::io::Error, what: &str) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("{what} within {} s", TIMEOUT.as_secs())
        }
        _ => e.to_string(),
    }
}
