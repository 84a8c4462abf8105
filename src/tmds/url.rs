//! The metadata endpoint's URL: the grammar the exporter accepts (plain `http://` with a host
//! and a valid port, no credentials) and how a value is repeated in messages (a password
//! redacted, as Go's `url.URL.Redacted` writes it). Used for `--ecs.metadata-uri` and for
//! [`METADATA_ENV`].

use std::ffi::OsString;
use std::fmt;

use super::Source;

/// The variable ECS sets in every container of a task: the endpoint's base URL.
pub const METADATA_ENV: &str = "ECS_CONTAINER_METADATA_URI_V4";

/// What is wrong with a URL given for the metadata endpoint.
#[derive(Debug, PartialEq, Eq)]
pub enum UrlProblem<'a> {
    Scheme(&'a str),
    NoHost,
    Port(&'a str),
    Credentials,
}

impl fmt::Display for UrlProblem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlProblem::Scheme(scheme) => write!(
                f,
                "unsupported scheme {scheme:?}; the ECS metadata endpoint is plain http://"
            ),
            UrlProblem::NoHost => f.write_str("the URL has no host"),
            UrlProblem::Port(port) => write!(f, "port {port:?} is not a port from 1 to 65535"),
            UrlProblem::Credentials => f.write_str(
                "credentials in the URL are not supported (the ECS metadata endpoint takes none)",
            ),
        }
    }
}

/// `Some(Ok(base))` for an http:// URL with a host and a valid port, if any (trailing slashes
/// trimmed); `Some(Err(problem))` for a URL that cannot serve; `None` for something that is not
/// a URL.
pub fn parse_url(value: &str) -> Option<Result<String, UrlProblem<'_>>> {
    let (scheme, rest) = value.split_once("://")?;
    let is_scheme = scheme
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if scheme.is_empty() || !is_scheme {
        return None;
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Some(Err(UrlProblem::Scheme(scheme)));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Some(Err(UrlProblem::Credentials));
    }
    // An IPv6 literal's colons are inside its brackets.
    let after_host = authority.rfind(']').unwrap_or(0);
    let (host, port) = match authority[after_host..].rfind(':') {
        Some(at) => (
            &authority[..after_host + at],
            Some(&authority[after_host + at + 1..]),
        ),
        None => (authority, None),
    };
    if host.is_empty() || host == "[]" {
        return Some(Err(UrlProblem::NoHost));
    }
    if let Some(port) = port.filter(|p| !p.is_empty())
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Some(Err(UrlProblem::Port(port)));
    }
    Some(Ok(value.trim_end_matches('/').to_owned()))
}

/// `value` with the password of any `user:password@` replaced by `xxxxx`, as Go's
/// `url.URL.Redacted` writes it, for messages that repeat what was given.
pub fn redacted(value: &str) -> std::borrow::Cow<'_, str> {
    let Some((scheme, rest)) = value.split_once("://") else {
        return value.into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    match authority.rsplit_once('@') {
        Some((userinfo, _)) => match userinfo.split_once(':') {
            Some((user, _)) => {
                let host_and_rest = &rest[userinfo.len()..];
                format!("{scheme}://{user}:xxxxx{host_and_rest}").into()
            }
            None => value.into(),
        },
        None => value.into(),
    }
}

/// The variable ECS sets; anything wrong with it is a start-up failure (exit 1), as in Go.
pub fn source_from_env(env_uri: Option<OsString>) -> Result<Source, String> {
    let Some(uri) = env_uri else {
        return Err(format!(
            "{METADATA_ENV} is not set: ecs_exporter runs inside an ECS task, where ECS sets it \
             (elsewhere, pass --ecs.metadata-uri with a URL or a fixtures directory)"
        ));
    };
    if uri.is_empty() {
        return Err(format!(
            "{METADATA_ENV} is empty: ecs_exporter expects the URL ECS sets \
             (elsewhere, pass --ecs.metadata-uri with a URL or a fixtures directory)"
        ));
    }
    let text = uri.to_string_lossy();
    let shown = redacted(&text);
    match uri.to_str().and_then(parse_url) {
        Some(Ok(url)) => Ok(Source::Http(url)),
        Some(Err(problem)) => Err(format!("{METADATA_ENV} is {shown:?}: {problem}")),
        None => Err(format!(
            "{METADATA_ENV} is {shown:?}, not an http:// URL: ecs_exporter expects the value ECS sets"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_env(value: Option<&str>) -> String {
        match source_from_env(value.map(OsString::from)) {
            Err(e) => e,
            Ok(source) => panic!("{value:?} gave {source:?}"),
        }
    }

    #[test]
    fn the_variable_must_be_an_http_url_with_a_host() {
        assert!(from_env(None).starts_with(
            "ECS_CONTAINER_METADATA_URI_V4 is not set: ecs_exporter runs inside an ECS task"
        ));
        assert!(from_env(Some("")).starts_with("ECS_CONTAINER_METADATA_URI_V4 is empty"));
        assert!(from_env(Some("unix:///run/x")).starts_with(
            "ECS_CONTAINER_METADATA_URI_V4 is \"unix:///run/x\": unsupported scheme \"unix\""
        ));
        assert!(from_env(Some("169.254.170.2/v4")).starts_with(
            "ECS_CONTAINER_METADATA_URI_V4 is \"169.254.170.2/v4\", not an http:// URL"
        ));
        assert_eq!(
            from_env(Some("http://u:s3cret@169.254.170.2/v4/x")),
            "ECS_CONTAINER_METADATA_URI_V4 is \"http://u:xxxxx@169.254.170.2/v4/x\": credentials in the URL are not supported (the ECS metadata endpoint takes none)"
        );
        assert_eq!(
            source_from_env(Some("http://h/v4/".into())),
            Ok(Source::Http("http://h/v4".into()))
        );
    }

    #[test]
    fn urls_and_their_redaction() {
        for ok in [
            "http://[::1]:80/v4",
            "http://h:65535",
            "http://h:/v4",
            "HTTP://h/v4",
        ] {
            assert!(parse_url(ok).is_some_and(|r| r.is_ok()), "{ok}");
        }
        // Something that only looks like a URL is not one.
        for not in ["://x", "my dir://x", "./a://b", "169.254.170.2/v4"] {
            assert!(parse_url(not).is_none(), "{not}");
        }
        assert_eq!(parse_url("http://:80/v4"), Some(Err(UrlProblem::NoHost)));
        assert_eq!(redacted("http://u:p@h/p"), "http://u:xxxxx@h/p");
        assert_eq!(redacted("http://u@h/p"), "http://u@h/p");
        assert_eq!(redacted("http://h/p@q"), "http://h/p@q");
    }
}
