//! Group `container_labels`: the container labels `--ecs.container-labels` selects, written as
//! one `ecs_container_labels` series per container with a `label_NAME` label per key, as
//! kube-state-metrics writes `kube_pod_labels` for its `--metric-labels-allowlist`. Nothing is
//! selected unless the flag is given.

use super::options::wildcard_match;
use super::{Metric, Subject, Switch, push_with};
use crate::exposition::{Sample, label_name_chars};
use crate::model::TaskMetadata;

pub(super) const SWITCH: Switch = Switch {
    name: "container_labels",
    default: true,
    help: "The container labels --ecs.container-labels selects (none unless\ngiven).",
};

pub(super) fn collect<'a>(c: &Subject<'a>, out: &mut Vec<Sample<'a>>) {
    match &c.container.labels {
        Some(labels) if !labels.0.is_empty() => {
            push_with(out, Metric::ContainerLabels, &[c.name], &labels.0, 1.0);
        }
        _ => {}
    }
}

/// Keeps of each container's labels those whose key one of `patterns` matches (`*` matches any
/// run of characters; an empty key is never kept), sorted by their label name: the order the writer needs. Of two keys with
/// one label name (`a.b` and `a-b` are both `label_a_b`), the one first in byte order is kept:
/// the same one on every scrape, and never a label twice. Runs on a decoded task, before it is
/// collected.
pub fn select(task: &mut TaskMetadata, patterns: &[String]) {
    for container in task.containers.iter_mut().flatten() {
        let Some(labels) = container.labels.as_mut() else {
            continue;
        };
        let labels = &mut labels.0;
        labels
            .retain(|(key, _)| !key.is_empty() && patterns.iter().any(|p| wildcard_match(p, key)));
        crate::order::sort_by(labels, |(a, _), (b, _)| {
            let names = label_name_chars(a).cmp(label_name_chars(b));
            names.then_with(|| a.cmp(b))
        });
        labels.dedup_by(|(later, _), (kept, _)| label_name_chars(later).eq(label_name_chars(kept)));
    }
}

/// Pairs of `patterns` without a wildcard whose keys would have the same label name: only the
/// first in byte order of each pair can ever be written (for the start-up warning).
pub fn colliding(patterns: &[String]) -> Vec<(&str, &str)> {
    let mut literal: Vec<&str> = patterns
        .iter()
        .map(String::as_str)
        .filter(|p| !p.contains('*'))
        .collect();
    crate::order::sort_by(&mut literal, Ord::cmp);
    literal.dedup();
    let mut pairs = Vec::new();
    // Sorted and without repeats: each `b` comes after its `a` and differs from it.
    for (i, a) in literal.iter().enumerate() {
        for b in literal.iter().skip(i + 1) {
            if label_name_chars(a).eq(label_name_chars(b)) {
                pairs.push((*a, *b));
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labelled(pairs: &[(&str, &str)]) -> TaskMetadata {
        let labels = pairs
            .iter()
            .map(|(k, v)| format!("\"{k}\": \"{v}\""))
            .collect::<Vec<_>>()
            .join(",");
        let body = format!("{{\"Containers\": [{{\"Name\": \"app\", \"Labels\": {{{labels}}}}}]}}");
        crate::model::decode_task(body).expect("decodes").document
    }

    fn kept(task: &TaskMetadata) -> Vec<(String, String)> {
        let containers = task.containers.as_deref().unwrap_or_default();
        containers
            .iter()
            .flat_map(|c| c.labels.iter().flat_map(|l| l.0.clone()))
            .collect()
    }

    #[test]
    fn selected_labels_are_sorted_by_name_and_never_twice() {
        let mut task = labelled(&[
            ("team", "core"),
            ("com.amazonaws.ecs.task-definition-family", "checkout"),
            ("com.amazonaws.ecs.cluster", "shop"),
            ("a-b", "second"),
            ("a.b", "first"),
            ("secret", "x"),
            ("", "empty"),
        ]);
        let patterns = ["com.amazonaws.ecs.*", "team", "a*", "*"].map(String::from);
        select(&mut task, &patterns);
        let want = [
            ("a-b", "second"),
            ("com.amazonaws.ecs.cluster", "shop"),
            ("com.amazonaws.ecs.task-definition-family", "checkout"),
            ("secret", "x"),
            ("team", "core"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        assert_eq!(kept(&task), want, "a-b sorts before a.b in byte order");
        let mut none = labelled(&[("team", "core")]);
        select(&mut none, &[]);
        assert!(kept(&none).is_empty());
    }

    #[test]
    fn literal_patterns_with_one_label_name_are_named() {
        let patterns = ["a.b", "a-b", "team", "c*", "a.b"].map(String::from);
        assert_eq!(colliding(&patterns), [("a-b", "a.b")]);
        assert!(colliding(&["x".to_owned(), "y".to_owned()]).is_empty());
    }
}
