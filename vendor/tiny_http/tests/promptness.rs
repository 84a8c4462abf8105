// CHANGED by the ecs_exporter project (Apache-2.0 4(b)), PATCHES.md 2 and 3. A connection's
// requests are now read one at a time, each with its whole (bounded) body, and answered by the
// connection's own thread; so "the next pipelined request is parsed while a slow answer is
// written" and "an answer is sent before the body has arrived" no longer hold by design. The
// pipelining tests now answer each request at once and check that all pipelined requests still
// come promptly; the response tests check that a body over the limit is refused (413) at once,
// without waiting for it, and that a very slow answer to one connection does not hold another.
// HTTP/1.1 requests carry a Host header, which is now required. The writers are client threads
// (support::client) that the server may cut off: they end quietly when it does. Bounds are
// support::bound's, scaled for emulation.
// Lints today's clippy finds in the test as published.
#![allow(clippy::inconsistent_digit_grouping, clippy::extra_unused_lifetimes)]

extern crate tiny_http;

use std::io::{self, copy, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::channel;
use std::thread::sleep;
use std::time::Duration;
use tiny_http::{Response, Server};

#[allow(dead_code)]
mod support;

/// Stream that produces bytes very slowly
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
struct SlowByteSrc {
    val: u8,
    len: usize,
}
impl<'b> Read for SlowByteSrc {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        sleep(Duration::from_millis(100));
        let l = self.len.min(buf.len()).min(1000);
        for v in buf[..l].iter_mut() {
            *v = self.val;
        }
        self.len -= l;
        Ok(l)
    }
}

/// crude impl of http `Transfer-Encoding: chunked`
fn encode_chunked(data: &mut dyn Read, output: &mut dyn Write) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let l = data.read(&mut buf)?;
        write!(output, "{:X}\r\n", l)?;
        output.write_all(&buf[..l])?;
        write!(output, "\r\n")?;
        if l == 0 {
            return Ok(());
        }
    }
}

mod prompt_pipelining {
    use super::*;

    /// Check that pipelined requests on the same connection are received promptly.
    fn assert_requests_parsed_promptly(
        req_cnt: usize,
        req_body: &'static [u8],
        timeout: Duration,
        req_writer: impl FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
    ) {
        let server = Server::http("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(server.server_addr().to_ip().unwrap()).unwrap();
        let (svr_send, svr_rcv) = channel();

        // Hands each request's body to the test, which checks it (a panic here would be a
        // panic in a detached thread).
        std::thread::spawn(move || {
            for _ in 0..req_cnt {
                let Ok(mut req) = server.recv() else { return };
                let mut body = Vec::new();
                let read = req.as_reader().read_to_end(&mut body).map(|_| body);
                // Answered at once: the next pipelined request is read once this is written.
                let _ = req.respond(Response::empty(200));
                if svr_send.send(read).is_err() {
                    return;
                }
            }
        });

        // The client stays open (answers are written to it) while another handle writes.
        let mut writer = client.try_clone().unwrap();
        support::client(move || req_writer(&mut writer));

        // requests must be sent and received quickly (before timeout expires)
        let timeout = support::bound(timeout);
        for i in 0..req_cnt {
            let body = svr_rcv
                .recv_timeout(timeout)
                .unwrap_or_else(|_| panic!("request {} was not read within {:?}", i, timeout))
                .expect("its body reads");
            assert_eq!(req_body, body.as_slice(), "request {i}'s body");
        }
    }

    #[test]
    fn empty() {
        assert_requests_parsed_promptly(5, &[], Duration::from_millis(400), move |wr| {
            for _ in 0..5 {
                write!(wr, "GET / HTTP/1.1\r\nHost: localhost\r\n")?;
                write!(wr, "Connection: keep-alive\r\n\r\n")?;
            }
            Ok(())
        });
    }

    #[test]
    fn content_length_short() {
        let body = &[65u8; 100]; // short but not trivial
        assert_requests_parsed_promptly(5, body, Duration::from_millis(400), move |wr| {
            for _ in 0..5 {
                write!(wr, "GET / HTTP/1.1\r\nHost: localhost\r\n")?;
                write!(wr, "Connection: keep-alive\r\n")?;
                write!(wr, "Content-Length: {}\r\n\r\n", body.len())?;
                wr.write_all(body)?;
            }
            Ok(())
        });
    }

    #[test]
    fn content_length_long() {
        let body = &[65u8; 10000]; // long enough that it won't be buffered
        assert_requests_parsed_promptly(5, body, Duration::from_millis(400), move |wr| {
            for _ in 0..5 {
                write!(wr, "GET / HTTP/1.1\r\nHost: localhost\r\n")?;
                write!(wr, "Connection: keep-alive\r\n")?;
                write!(wr, "Content-Length: {}\r\n\r\n", body.len())?;
                wr.write_all(body)?;
            }
            Ok(())
        });
    }

    #[test]
    fn chunked() {
        let body = &[65u8; 10000];
        assert_requests_parsed_promptly(5, body, Duration::from_millis(400), move |wr| {
            for _ in 0..5 {
                write!(wr, "GET / HTTP/1.1\r\nHost: localhost\r\n")?;
                write!(wr, "Connection: keep-alive\r\n")?;
                write!(wr, "Transfer-Encoding: chunked\r\n\r\n")?;
                encode_chunked(&mut &body[..], wr)?;
            }
            Ok(())
        });
    }

    /// A very slow answer (a byte source that takes 100 s) to one connection holds only that
    /// connection: another connection's request is read and answered meanwhile.
    #[test]
    fn a_very_slow_answer_holds_only_its_connection() {
        let server = Server::http("127.0.0.1:0").unwrap();
        let address = server.server_addr().to_ip().unwrap();
        let mut slow = TcpStream::connect(address).unwrap();
        slow.write_all(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let request = server.recv().unwrap();
        assert_eq!(request.url(), "/slow");
        let resp_body = SlowByteSrc {
            val: 42,
            len: 1000_000,
        };
        request
            .respond(Response::new(200.into(), vec![], resp_body, None, None))
            .unwrap();

        let mut other = TcpStream::connect(address).unwrap();
        other
            .write_all(b"GET /other HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (sent, received) = channel();
        std::thread::spawn(move || {
            if let Ok(rq) = server.recv() {
                let _ = sent.send(rq.url().to_owned());
                let _ = rq.respond(Response::from_string("other"));
            }
        });
        let timeout = support::bound(Duration::from_millis(400));
        let url = received
            .recv_timeout(timeout)
            .expect("the other connection's request is read while the slow answer is written");
        assert_eq!(url, "/other");
        other.set_read_timeout(Some(timeout)).unwrap();
        let mut answer = String::new();
        other.read_to_string(&mut answer).unwrap();
        assert!(answer.ends_with("other"), "{}", answer);
        // The slow answer is on its way, 1,000 bytes every 100 ms (its head leaves with the
        // first buffer of its body).
        slow.set_read_timeout(Some(support::bound(Duration::from_secs(5))))
            .unwrap();
        let mut start = [0u8; 15];
        slow.read_exact(&mut start).unwrap();
        assert_eq!(&start, b"HTTP/1.1 200 OK");
    }
}

mod prompt_responses {
    use super::*;

    /// Check that response is sent promptly without waiting for full request body.
    fn assert_responds_promptly(
        timeout: Duration,
        req_writer: impl FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
    ) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let limits = tiny_http::Limits {
            max_body: 500,
            ..tiny_http::Limits::default()
        };
        let server = Server::from_listeners(vec![listener.into()], limits).unwrap();
        let client = TcpStream::connect(server.server_addr().to_ip().unwrap()).unwrap();

        // server attempts to respond immediately
        support::serve(server, |_| Response::from_string("").with_status_code(400));

        // request written (possibly very slowly) in another thread, which the server cuts off
        let mut client_write = client.try_clone().unwrap();
        support::client(move || req_writer(&mut client_write));

        // response should arrive quickly (before timeout expires)
        client
            .set_read_timeout(Some(support::bound(timeout)))
            .unwrap();
        let mut answer = [0u8; 4096];
        let resp = (&client).read(&mut answer);
        let _ = client.shutdown(Shutdown::Both);
        assert!(resp.is_ok(), "Server response was not sent promptly");
        assert!(
            answer.starts_with(b"HTTP/1.1 413 ") || answer.starts_with(b"HTTP/1.1 417 "),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }

    static SLOW_BODY: SlowByteSrc = SlowByteSrc {
        val: 65,
        len: 1000_000,
    };

    #[test]
    fn content_length_http11() {
        assert_responds_promptly(Duration::from_millis(400), move |wr| {
            write!(wr, "GET / HTTP/1.1\r\nHost: localhost\r\n")?;
            write!(wr, "Content-Length: {}\r\n\r\n", SLOW_BODY.len)?;
            copy(&mut SLOW_BODY.clone(), wr).map(drop)
        });
    }

    #[test]
    fn content_length_http10() {
        assert_responds_promptly(Duration::from_millis(400), move |wr| {
            write!(wr, "GET / HTTP/1.0\r\nHost: localhost\r\n")?;
            write!(wr, "Content-Length: {}\r\n\r\n", SLOW_BODY.len)?;
            copy(&mut SLOW_BODY.clone(), wr).map(drop)
        });
    }

    #[test]
    fn expect_continue() {
        assert_responds_promptly(Duration::from_millis(400), move |wr| {
            write!(wr, "GET / HTTP/1.1\r\nHost: localhost\r\n")?;
            write!(wr, "Expect: 100 continue\r\n")?;
            write!(wr, "Content-Length: {}\r\n\r\n", SLOW_BODY.len)?;
            copy(&mut SLOW_BODY.clone(), wr).map(drop)
        });
    }

    #[test]
    fn chunked() {
        assert_responds_promptly(Duration::from_millis(400), move |wr| {
            write!(wr, "GET / HTTP/1.1\r\nHost: localhost\r\n")?;
            write!(wr, "Transfer-Encoding: chunked\r\n\r\n")?;
            encode_chunked(&mut SLOW_BODY.clone(), wr)
        });
    }
}
