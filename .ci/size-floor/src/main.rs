//! One call into each of the four crates, so that each is linked; it serves no purpose beyond
//! measuring what they and std cost in a static binary.
fn main() {
    let mut p = lexopt::Parser::from_env();
    let mut url = String::from("http://127.0.0.1:9/x");
    while let Ok(Some(arg)) = p.next() {
        if let lexopt::Arg::Long("u") = arg { url = p.value().ok().and_then(|v| v.into_string().ok()).unwrap_or_default(); }
    }
    let server = tiny_http::Server::http("127.0.0.1:0").ok();
    if let Some(s) = server {
        if let Ok(rq) = s.recv() {
            let body = minreq::get(&url).with_timeout(3).send().map(|r| r.as_bytes().to_vec()).unwrap_or_default();
            let v: Option<miniserde::json::Value> = std::str::from_utf8(&body).ok().and_then(|t| miniserde::json::from_str(t).ok());
            let _ = rq.respond(tiny_http::Response::from_string(format!("{}", v.is_some())));
        }
    }
}
