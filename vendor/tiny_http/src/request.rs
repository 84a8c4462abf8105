// CHANGED by the ecs_exporter project (Apache-2.0 4(b)), PATCHES.md 2 and 3: a request arrives
// with its body already read (bounded), and is answered by handing the response to the thread of
// its connection, which writes it. So no handler thread ever reads, drains or writes a client's
// socket: a client that sends slowly or never reads holds only its own connection. `upgrade`
// and `into_writer`, which gave the socket to the handler, are gone with that.

use std::io::{self, Cursor, Read};

use std::fmt;
use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::sync::Weak;

use crate::connection::Connection;
use crate::{HTTPVersion, Header, Method, Response, ResponseBox};

/// Represents an HTTP request made by a client.
///
/// A `Request` object is what is produced by the server, and is your what
/// your code must analyse and answer.
///
/// This object implements the `Send` trait, therefore you can dispatch your requests to
/// worker threads.
///
/// # Pipelining
///
/// A connection's next request is read only once this one's answer has been written, so the
/// answers of one connection are always in order.
///
/// # Sending a response
///
/// The `respond` method hands the response to the connection, whose own thread writes it.
///
/// If a `Request` object is destroyed without `respond` being called,
/// an empty response with a 500 status code (internal server error) will automatically be
/// sent back to the client.
pub struct Request {
    /// The body, read whole before the request was handed over.
    body: Cursor<Vec<u8>>,

    /// Where the answer goes: the connection's thread. `None` once answered.
    reply: Option<Sender<ResponseBox>>,

    /// The connection it came on, to see whether the client is still there.
    connection: Weak<Connection>,

    remote_addr: Option<SocketAddr>,

    method: Method,

    path: String,

    http_version: HTTPVersion,

    headers: Vec<Header>,

    body_length: Option<usize>,
}

impl Request {
    #[allow(clippy::too_many_arguments)] // what a request is made of, in one place
    pub(crate) fn new(
        method: Method,
        path: String,
        http_version: HTTPVersion,
        headers: Vec<Header>,
        body: Vec<u8>,
        body_length: Option<usize>,
        remote_addr: Option<SocketAddr>,
        reply: Sender<ResponseBox>,
        connection: Weak<Connection>,
    ) -> Request {
        Request {
            body: Cursor::new(body),
            reply: Some(reply),
            connection,
            remote_addr,
            method,
            path,
            http_version,
            headers,
            body_length,
        }
    }

    /// Returns true if the request was made through HTTPS (never, in this copy).
    #[inline]
    pub fn secure(&self) -> bool {
        false
    }

    /// Returns the method requested by the client (eg. `GET`, `POST`, etc.).
    #[inline]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Returns the resource requested by the client.
    #[inline]
    pub fn url(&self) -> &str {
        &self.path
    }

    /// Returns a list of all headers sent by client.
    #[inline]
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Returns the HTTP version of the request.
    #[inline]
    pub fn http_version(&self) -> &HTTPVersion {
        &self.http_version
    }

    /// Returns the length of the body in bytes, as the `Content-Length` header declared it.
    #[inline]
    pub fn body_length(&self) -> Option<usize> {
        self.body_length
    }

    /// Returns the address of the client that sent this request.
    #[inline]
    pub fn remote_addr(&self) -> Option<&SocketAddr> {
        self.remote_addr.as_ref()
    }

    /// Whether the client has closed (or reset) the connection since it sent this request, or
    /// the server has closed it: an answer would reach nobody. (A client that only shut its
    /// sending side and still reads looks the same, as it does to Go's net/http, which cancels
    /// such a request's context.)
    pub fn client_gone(&self) -> bool {
        self.connection
            .upgrade()
            .is_none_or(|connection| connection.peer_closed())
    }

    /// Allows to read the body of the request.
    #[inline]
    pub fn as_reader(&mut self) -> &mut dyn Read {
        &mut self.body
    }

    /// Sends a response to this request: the connection's thread writes it, within the
    /// connection's write deadline, after which this call has long returned. Fails only if the
    /// connection is already gone.
    #[inline]
    pub fn respond<R>(mut self, response: Response<R>) -> Result<(), io::Error>
    where
        R: Read + Send + 'static,
    {
        self.send(response.boxed())
    }

    fn send(&mut self, response: ResponseBox) -> Result<(), io::Error> {
        match self.reply.take() {
            Some(reply) => reply
                .send(response)
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "connection closed")),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> Result<(), fmt::Error> {
        write!(
            formatter,
            "Request({} {} from {:?})",
            self.method, self.path, self.remote_addr
        )
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if self.reply.is_some() {
            let _ = self.send(Response::empty(500).boxed());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn must_be_send() {
        #![allow(dead_code)]
        fn f<T: Send>(_: &T) {}
        fn bar(rq: &Request) {
            f(rq);
        }
    }
}
