//! A strict parser of the exposition format, and helpers to read what it parsed.

/// One sample: name, label pairs, value.
pub type Series = (String, Vec<(String, String)>, f64);

/// Parses exposition format 0.0.4 strictly, panicking with the offending line on any error:
/// each family's HELP then TYPE come first and once, samples of a family are contiguous,
/// label values are properly escaped, no series repeats, and values are Go floats.
pub fn parse_exposition(text: &str) -> Vec<Series> {
    let mut series: Vec<Series> = Vec::new();
    let mut seen: std::collections::HashSet<(String, Vec<(String, String)>)> =
        std::collections::HashSet::new();
    let mut families: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut typed = false;
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "exposition must end with a newline"
    );
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad HELP: {line}"));
            assert!(valid_name(name), "bad metric name in: {line}");
            assert!(
                !families.contains(&name.to_owned()),
                "family {name} appears twice"
            );
            check_escapes(help, false, line);
            families.push(name.to_owned());
            current = Some(name.to_owned());
            typed = false;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad TYPE: {line}"));
            assert_eq!(Some(name), current.as_deref(), "TYPE without HELP: {line}");
            assert!(
                matches!(kind, "counter" | "gauge"),
                "unexpected type: {line}"
            );
            assert!(!typed, "TYPE twice: {line}");
            typed = true;
        } else {
            let (name, labels, value) = parse_sample(line);
            assert_eq!(
                Some(name.as_str()),
                current.as_deref(),
                "sample outside its family: {line}"
            );
            assert!(typed, "sample before TYPE: {line}");
            let mut identity = labels.clone();
            identity.sort();
            assert!(
                seen.insert((name.clone(), identity)),
                "duplicate series: {line}"
            );
            series.push((name, labels, value));
        }
    }
    series
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn check_escapes(text: &str, quoted: bool, line: &str) {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\\' | 'n') => {}
                Some('"') if quoted => {}
                other => panic!("bad escape \\{other:?} in: {line}"),
            },
            '"' if quoted => panic!("unescaped quote in: {line}"),
            '\n' => panic!("raw newline in: {line}"),
            _ => {}
        }
    }
}

fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_sample(line: &str) -> Series {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("bad sample: {line}"));
    let name = &line[..name_end];
    assert!(valid_name(name), "bad metric name in: {line}");
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut body = body;
        loop {
            let (label, after) = body
                .split_once("=\"")
                .unwrap_or_else(|| panic!("bad labels: {line}"));
            assert!(
                valid_name(label) && !label.contains(':'),
                "bad label name in: {line}"
            );
            // The value ends at the first quote not escaped by a backslash.
            let bytes = after.as_bytes();
            let mut i = 0;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            assert!(i < bytes.len(), "unterminated label value: {line}");
            let raw = &after[..i];
            check_escapes(raw, true, line);
            assert!(
                !labels.iter().any(|(l, _): &(String, String)| l == label),
                "label twice: {line}"
            );
            labels.push((label.to_owned(), unescape(raw)));
            let tail = &after[i + 1..];
            if let Some(t) = tail.strip_prefix(',') {
                body = t;
            } else if let Some(t) = tail.strip_prefix('}') {
                rest = t;
                break;
            } else {
                panic!("bad label separator: {line}");
            }
        }
    }
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no value: {line}"));
    let value = match value {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value in: {line}")),
    };
    (name.to_owned(), labels, value)
}

/// The value of one series, if present.
pub fn value(series: &[Series], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    series
        .iter()
        .find(|(n, l, _)| {
            n == name
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| *v)
}

/// Masks what differs between builds in `ecs_exporter_build_info` (revision, compiler, arch),
/// so golden files hold across commits and platforms.
pub fn mask_build_info(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("ecs_exporter_build_info{") {
            let version = env!("CARGO_PKG_VERSION");
            out.push_str(&format!(
                "ecs_exporter_build_info{{goarch=\"ARCH\",goos=\"linux\",revision=\"REVISION\",rustversion=\"RUSTVERSION\",version=\"{version}\"}} 1"
            ));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}
