//! Prometheus text exposition format 0.0.4.
//!
//! The only place that formats numbers and escapes text, so that every family, ours or the Go
//! exporter's, comes out the way Go's `prometheus/common/expfmt` writes it: families in the order
//! given (the metric table is sorted by name), samples sorted by label values, floats in Go's
//! `strconv.FormatFloat(f, 'g', -1, 64)` shortest form.

mod float;

use float::write_float;
use std::sync::{Arc, Mutex, PoisonError};

/// The most labels any family has (`ecs_task_metadata_info` has 8).
pub(crate) const MAX_LABELS: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One metric family: what `# HELP` and `# TYPE` say, and the label names its samples carry,
/// sorted by name as Go writes them.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    /// Written as it is: no `\\` or newline (the collector's table test checks).
    pub help: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
}

/// One sample. `family` indexes the table given to [`Exposition::add`]; `labels` holds the values in the
/// order of the family's label names, the unused tail left empty. Values borrow from the decoded
/// documents, so collecting a scrape allocates one `Vec` and no strings.
#[derive(Clone, Debug)]
pub struct Sample<'a> {
    pub family: usize,
    pub labels: [&'a str; MAX_LABELS],
    /// The value of the task label [`Exposition::add`] is given, or empty for none: the one label that
    /// every sample of a task carries when a scrape writes several tasks. It is written among
    /// the family's labels in the order of names, and samples are sorted by it before the
    /// family's labels.
    pub task: &'a str,
    /// Labels the family does not name, `(key, value)`: written as `label_name(key)`, in the
    /// order of those names, which must be unique (`collect::container_labels` sees to both).
    pub extra: &'a [(String, String)],
    pub value: f64,
}

/// A key of the endpoint's (a container label's) as a label name: `label_` and the key with every
/// character but ASCII letters, digits and `_` made `_`, as kube-state-metrics writes
/// `kube_pod_labels`: `com.amazonaws.ecs.task-definition-family` is
/// `label_com_amazonaws_ecs_task_definition_family`.
pub(crate) fn label_name(key: &str, out: &mut String) {
    out.extend(label_name_chars(key));
}

/// The characters of [`label_name`]`(key)`, for comparing names without making them.
pub(crate) fn label_name_chars(key: &str) -> impl Iterator<Item = char> + '_ {
    "label_".chars().chain(key.chars().map(|c| match c {
        'a'..='z' | 'A'..='Z' | '0'..='9' | '_' => c,
        _ => '_',
    }))
}

/// One scrape's exposition, written a batch of samples at a time (in instance scope, a task's)
/// into one buffer per family, so that a scrape never holds more samples than one batch; the
/// text is the buffers in table order ([`take`](Self::take)). The buffers keep
/// their memory from scrape to scrape.
///
/// Within a batch, samples are sorted by family, then by [`task`](Sample::task), then by label
/// values (as client_golang's registry does). Where two samples of one family have the same
/// task and label values, the later one wins: this is how one network series per interface is
/// kept when several containers report the same interface (the Go exporter's "last container in
/// /task's order wins"), and it keeps the output valid should the endpoint ever repeat a
/// container name. Across batches the caller keeps that order: the batches of a family's
/// samples come in the order of their tasks, and no series is in two batches.
#[derive(Debug, Default)]
pub struct Exposition {
    families: Vec<String>,
    bytes: usize,
    samples: usize,
    limit: usize,
    /// Where a [`Body`] gives the buffers back once it has been written, for the next scrape
    /// to write into instead of growing new ones.
    returned: Arc<Mutex<Vec<String>>>,
}

impl Exposition {
    /// Empties it for a scrape over a table of `families` families, of at most `limit` bytes.
    /// A buffer much larger than what the last scrape wrote into it (after a hostile document)
    /// gives the memory back.
    pub fn start(&mut self, families: usize, limit: usize) {
        if self.families.is_empty() {
            let mut returned = self.returned.lock().unwrap_or_else(PoisonError::into_inner);
            self.families = std::mem::take(&mut *returned);
        }
        self.families.resize_with(families, String::new);
        for buffer in &mut self.families {
            if buffer.capacity() > 2 * buffer.len() + 4096 {
                buffer.shrink_to(buffer.len());
            }
            buffer.clear();
        }
        self.bytes = 0;
        self.samples = 0;
        self.limit = limit;
    }

    /// Writes a batch; a sample's [`task`](Sample::task) is written as the label `task_label`.
    /// Fails with [`TooLarge`] as soon as the text is over the limit (writing stops there, so
    /// that no document can make the answer grow without bound).
    pub fn add(
        &mut self,
        table: &[Family],
        task_label: &str,
        samples: &[Sample<'_>],
    ) -> Result<(), TooLarge> {
        // Sort positions rather than the samples themselves: a sample is 160 bytes and moving
        // them was most of the sort's cost. The sort is stable, so equal keys keep collection
        // order and "later wins" below means "collected later". Labels past a family's own
        // count are empty. (Positions index `samples`: always in range.)
        let label_count = |s: &Sample<'_>| table.get(s.family).map_or(0, |f| f.labels.len());
        let positions = crate::order::sorted(samples.len(), &|a, b| {
            let (a, b) = (&samples[a], &samples[b]);
            let n = label_count(a);
            a.family
                .cmp(&b.family)
                .then_with(|| a.task.cmp(b.task))
                .then_with(|| a.labels[..n].cmp(&b.labels[..n]))
        });
        let at = |i: usize| positions.get(i).map(|&p| &samples[p]);
        for (i, &p) in positions.iter().enumerate() {
            let sample = &samples[p];
            if let Some(next) = at(i + 1)
                && next.family == sample.family
                && next.task == sample.task
                && next.labels == sample.labels
            {
                continue;
            }
            let (Some(family), Some(out)) = (
                table.get(sample.family),
                self.families.get_mut(sample.family),
            ) else {
                debug_assert!(false, "family {} is not in the table", sample.family);
                continue;
            };
            let before = out.len();
            if out.is_empty() {
                write_header(out, family);
            }
            out.push_str(family.name);
            let task = (!sample.task.is_empty()).then_some((task_label, sample.task));
            write_labels(out, family.labels, &sample.labels, task, sample.extra);
            out.push(' ');
            write_float(out, sample.value);
            out.push('\n');
            self.bytes += out.len() - before;
            self.samples += 1;
            if self.bytes > self.limit {
                return Err(TooLarge(self.limit));
            }
        }
        Ok(())
    }

    /// The samples written.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The text's length in bytes.
    pub fn len(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// The text, taken out to be sent without joining the pieces first. It is written by the
    /// client connection's own thread after the scrape loop has moved on, so it owns its
    /// buffers; it gives them back when it is dropped, for a later scrape.
    pub fn take(&mut self) -> Body {
        Body {
            parts: std::mem::take(&mut self.families),
            index: 0,
            at: 0,
            home: Arc::clone(&self.returned),
        }
    }
}

/// [`Exposition::take`]: the text, piece after piece.
pub struct Body {
    parts: Vec<String>,
    /// The piece being read, and how much of it has been.
    index: usize,
    at: usize,
    home: Arc<Mutex<Vec<String>>>,
}

impl std::io::Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(part) = self.parts.get(self.index) {
            let mut rest = part.as_bytes().get(self.at..).unwrap_or_default();
            if !rest.is_empty() {
                let n = rest.read(buf)?;
                self.at += n;
                return Ok(n);
            }
            self.index += 1;
            self.at = 0;
        }
        Ok(0)
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        let mut home = self.home.lock().unwrap_or_else(PoisonError::into_inner);
        if home.is_empty() {
            *home = std::mem::take(&mut self.parts);
        }
    }
}

/// The exposition grew past this many bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLarge(pub usize);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the answer would be larger than {} MiB", self.0 >> 20)
    }
}

fn write_header(out: &mut String, family: &Family) {
    out.push_str("# HELP ");
    out.push_str(family.name);
    out.push(' ');
    // HELP texts are constants with nothing to escape (a test checks every table entry): copied
    // whole rather than scanned byte by byte, a measurable share of a scrape.
    out.push_str(family.help);
    out.push_str("\n# TYPE ");
    out.push_str(family.name);
    out.push_str(match family.kind {
        Kind::Counter => " counter\n",
        Kind::Gauge => " gauge\n",
    });
}

/// The family's labels, the task label if any and the sample's extra ones, merged in the order
/// of their names (Go's registry sorts label names).
fn write_labels(
    out: &mut String,
    names: &[&str],
    values: &[&str],
    task: Option<(&str, &str)>,
    extra: &[(String, String)],
) {
    if names.is_empty() && task.is_none() && extra.is_empty() {
        return;
    }
    // The family's labels with the task label in its place.
    let mut own = [("", ""); MAX_LABELS + 1];
    let mut count = 0;
    let mut task = task;
    for pair in names.iter().zip(values).map(|(n, v)| (*n, *v)) {
        if let Some(t) = task.filter(|t| t.0 < pair.0) {
            own[count] = t;
            count += 1;
            task = None;
        }
        own[count] = pair;
        count += 1;
    }
    if let Some(t) = task {
        own[count] = t;
        count += 1;
    }
    let mut extra_names = Vec::new();
    for (key, _) in extra {
        let mut name = String::new();
        label_name(key, &mut name);
        extra_names.push(name);
    }
    let mut own = own.iter().take(count).peekable();
    let mut more = extra_names
        .iter()
        .zip(extra.iter().map(|(_, v)| v))
        .peekable();
    out.push('{');
    let mut first = true;
    loop {
        let take_own = match (own.peek(), more.peek()) {
            (Some((a, _)), Some((b, _))) => *a <= b.as_str(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let (name, value): (&str, &str) = if take_own {
            own.next().copied().unwrap_or_default()
        } else {
            more.next()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .unwrap_or_default()
        };
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        escape_into(out, value);
        out.push('"');
    }
    out.push('}');
}

/// Escapes a label value's `\`, newline and `"`, copying clean runs in one push.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    let mut clean = 0;
    for (i, b) in text.bytes().enumerate() {
        let escaped = match b {
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'"' => "\\\"",
            _ => continue,
        };
        out.push_str(&text[clean..i]);
        out.push_str(escaped);
        clean = i + 1;
    }
    out.push_str(&text[clean..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body written and dropped gives its buffers back: the next scrape writes into them
    /// rather than growing new ones, and a body still being written keeps its own.
    #[test]
    fn a_written_body_gives_its_buffers_back() {
        let mut exposition = Exposition::default();
        exposition.start(3, 1 << 20);
        exposition.families[1].push_str("ecs_up 1\n");
        let mut text = String::new();
        let mut body = exposition.take();
        std::io::Read::read_to_string(&mut body, &mut text).expect("UTF-8 text");
        assert_eq!(text, "ecs_up 1\n");
        exposition.start(3, 1 << 20);
        assert!(
            exposition.families.iter().all(|f| f.capacity() == 0),
            "still with the body"
        );
        drop(body);
        exposition.take();
        exposition.start(3, 1 << 20);
        assert!(exposition.families.iter().all(String::is_empty));
        assert!(
            exposition.families[1].capacity() >= 9,
            "the buffer came back"
        );
    }

    #[test]
    fn escapes_label_values() {
        let rows: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("a\"b", "a\\\"b"),
            ("a\\b", "a\\\\b"),
            ("line\nbreak", "line\\nbreak"),
            ("\"\\\n", "\\\"\\\\\\n"),
            ("ünïcode ✓", "ünïcode ✓"),
        ];
        for &(text, want) in rows {
            let mut out = String::new();
            escape_into(&mut out, text);
            assert_eq!(out, want, "escaping {text:?}");
        }
    }

    /// Writes `samples` as one batch of an [`Exposition`] (see there) and appends the text to `out`;
    /// the number of samples written, or [`TooLarge`] past `limit` bytes (`out` then holds what was
    /// written up to there).
    fn write(
        out: &mut String,
        families: &[Family],
        task_label: &str,
        samples: &[Sample<'_>],
        limit: usize,
    ) -> Result<usize, TooLarge> {
        let mut exposition = Exposition::default();
        exposition.start(families.len(), limit);
        let result = exposition.add(families, task_label, samples);
        std::io::Read::read_to_string(&mut exposition.take(), out).expect("UTF-8 text");
        result.map(|()| exposition.samples())
    }

    const TABLE: &[Family] = &[
        Family {
            name: "a_total",
            help: "A.",
            kind: Kind::Counter,
            labels: &["name"],
        },
        Family {
            name: "b",
            help: "B.",
            kind: Kind::Gauge,
            labels: &[],
        },
    ];

    fn sample(family: usize, label: &str, value: f64) -> Sample<'_> {
        let mut labels = [""; MAX_LABELS];
        labels[0] = label;
        Sample {
            family,
            labels,
            task: "",
            extra: &[],
            value,
        }
    }

    #[test]
    fn sorts_samples_skips_empty_families_and_keeps_the_last_duplicate() {
        let samples = vec![
            sample(0, "z", 1.0),
            sample(0, "a", 2.0),
            sample(0, "z", 3.0),
            sample(0, "m", 4.0),
        ];
        let mut out = String::new();
        assert_eq!(write(&mut out, TABLE, "task", &samples, usize::MAX), Ok(3));
        let whole = "# HELP a_total A.\n# TYPE a_total counter\n\
                     a_total{name=\"a\"} 2\na_total{name=\"m\"} 4\na_total{name=\"z\"} 3\n";
        assert_eq!(out, whole);
        // Past the limit, writing stops at the sample that passed it.
        for limit in [whole.len() - 1, 70] {
            out.clear();
            assert_eq!(
                write(&mut out, TABLE, "task", &samples, limit),
                Err(TooLarge(limit))
            );
            assert!(
                out.len() > limit && whole.starts_with(&out),
                "{limit}: {out}"
            );
        }
        out.clear();
        assert_eq!(write(&mut out, TABLE, "task", &samples, whole.len()), Ok(3));
    }

    #[test]
    fn labels_are_comma_separated_in_the_family_order() {
        const TWO: &[Family] = &[Family {
            name: "info",
            help: "I.",
            kind: Kind::Gauge,
            labels: &["a", "b"],
        }];
        let mut labels = [""; MAX_LABELS];
        labels[0] = "x";
        labels[1] = "y\"z";
        let samples = [Sample {
            family: 0,
            labels,
            task: "",
            extra: &[],
            value: 1.0,
        }];
        let mut out = String::new();
        assert_eq!(write(&mut out, TWO, "task", &samples, usize::MAX), Ok(1));
        assert_eq!(
            out,
            "# HELP info I.\n# TYPE info gauge\ninfo{a=\"x\",b=\"y\\\"z\"} 1\n"
        );
    }

    #[test]
    fn extra_labels_are_named_from_their_keys_and_merged_in_order() {
        let mut name = String::new();
        label_name("com.amazonaws.ecs.task-definition-family", &mut name);
        assert_eq!(name, "label_com_amazonaws_ecs_task_definition_family");
        name.clear();
        label_name("9 lives/ü", &mut name);
        assert_eq!(name, "label_9_lives__");
        const INFO: &[Family] = &[Family {
            name: "info",
            help: "I.",
            kind: Kind::Gauge,
            labels: &["container_name", "zone"],
        }];
        let mut labels = [""; MAX_LABELS];
        labels[0] = "app";
        labels[1] = "z\"1";
        let extra = [
            ("a.b".to_owned(), "x\ny".to_owned()),
            ("team".to_owned(), "core".to_owned()),
        ];
        let samples = [Sample {
            family: 0,
            labels,
            task: "",
            extra: &extra,
            value: 1.0,
        }];
        let mut out = String::new();
        assert_eq!(write(&mut out, INFO, "task", &samples, usize::MAX), Ok(1));
        assert_eq!(
            out,
            "# HELP info I.\n# TYPE info gauge\n\
             info{container_name=\"app\",label_a_b=\"x\\ny\",label_team=\"core\",zone=\"z\\\"1\"} 1\n"
        );
    }

    #[test]
    fn the_task_label_takes_its_place_among_the_names_and_sorts_first() {
        const TABLE: &[Family] = &[
            Family {
                name: "rx_total",
                help: "R.",
                kind: Kind::Counter,
                labels: &["interface", "zone"],
            },
            Family {
                name: "up",
                help: "U.",
                kind: Kind::Gauge,
                labels: &[],
            },
            Family {
                name: "labels",
                help: "L.",
                kind: Kind::Gauge,
                labels: &["container_name"],
            },
        ];
        let extra = [("team".to_owned(), "core".to_owned())];
        let s = |family, task, interface, value| {
            let mut labels = [""; MAX_LABELS];
            labels[0] = interface;
            labels[1] = "z";
            let extra: &[(String, String)] = if family == 2 { &extra } else { &[] };
            Sample {
                family,
                labels,
                task,
                extra,
                value,
            }
        };
        let samples = [
            s(0, "t2", "eth0", 1.0),
            s(0, "t1", "eth1", 2.0),
            s(0, "t1", "eth0", 3.0),
            s(0, "t2", "eth0", 4.0),
            s(0, "", "eth0", 5.0),
            s(1, "t1", "", 1.0),
            s(2, "t1", "app", 1.0),
        ];
        let mut out = String::new();
        assert_eq!(
            write(&mut out, TABLE, "task_arn", &samples, usize::MAX),
            Ok(6)
        );
        assert_eq!(
            out,
            "# HELP rx_total R.\n# TYPE rx_total counter\n\
             rx_total{interface=\"eth0\",zone=\"z\"} 5\n\
             rx_total{interface=\"eth0\",task_arn=\"t1\",zone=\"z\"} 3\n\
             rx_total{interface=\"eth1\",task_arn=\"t1\",zone=\"z\"} 2\n\
             rx_total{interface=\"eth0\",task_arn=\"t2\",zone=\"z\"} 4\n\
             # HELP up U.\n# TYPE up gauge\nup{task_arn=\"t1\"} 1\n\
             # HELP labels L.\n# TYPE labels gauge\n\
             labels{container_name=\"app\",label_team=\"core\",task_arn=\"t1\"} 1\n"
        );
    }

    #[test]
    fn a_buffer_much_larger_than_its_last_text_gives_the_memory_back() {
        let names: Vec<String> = (0..2000).map(|i| format!("n{i}")).collect();
        let big: Vec<Sample<'_>> = names.iter().map(|n| sample(0, n, 1.0)).collect();
        let small = [sample(0, "a", 1.0)];
        let mut e = Exposition::default();
        e.start(TABLE.len(), usize::MAX);
        assert!(e.is_empty());
        assert_eq!(e.add(TABLE, "task", &big), Ok(()));
        assert!(!e.is_empty());
        let grown = e.families[0].capacity();
        let written = e.families[0].len();
        assert!(grown > 30_000, "{grown}");
        // The last scrape used it all: kept.
        e.start(TABLE.len(), usize::MAX);
        assert!(e.families[0].capacity() >= grown);
        // The last scrape used a little over half of it: kept too (within twice the text and
        // 4 KiB).
        let half = big.len() * (grown / 2 + 1000) / written;
        assert_eq!(e.add(TABLE, "task", &big[..half]), Ok(()));
        e.start(TABLE.len(), usize::MAX);
        assert!(e.families[0].capacity() >= grown);
        assert_eq!(e.add(TABLE, "task", &small), Ok(()));
        // The last scrape used a sliver of it: given back.
        e.start(TABLE.len(), usize::MAX);
        let now = e.families[0].capacity();
        assert!(now < 4096, "{now}");
        assert!(e.is_empty() && e.samples() == 0);
    }

    /// A family of the most labels there are, and a task label among them.
    #[test]
    fn the_task_label_fits_beside_the_most_labels_a_family_has() {
        const WIDE: &[Family] = &[Family {
            name: "wide",
            help: "W.",
            kind: Kind::Gauge,
            labels: &["a", "b", "c", "d", "e", "f", "g", "h"],
        }];
        let labels = ["1", "2", "3", "4", "5", "6", "7", "8"];
        let samples = [Sample {
            family: 0,
            labels,
            task: "t",
            extra: &[],
            value: 1.0,
        }];
        let mut out = String::new();
        assert_eq!(write(&mut out, WIDE, "i", &samples, usize::MAX), Ok(1));
        assert!(
            out.ends_with(
                "wide{a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\",f=\"6\",g=\"7\",h=\"8\",i=\"t\"} 1\n"
            ),
            "{out}"
        );
    }
}
