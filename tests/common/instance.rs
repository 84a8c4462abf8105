//! Instance scope's documents, made from single-task ones: `/tasks` is a JSON array of `/task`
//! documents and `/tasks/stats` one of `/task/stats` maps. The generated tasks are distinct as
//! on a real instance: each its own task ARN and container ids.

use miniserde::json::{self, Array, Value};

/// A JSON array's elements, each as compact JSON text.
pub fn elements(text: &str) -> Vec<String> {
    match json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items.iter().map(json::to_string).collect(),
        _ => panic!("not a JSON array: {}", &text[..text.len().min(80)]),
    }
}

/// A JSON array of these documents.
pub fn array(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

/// The task ARN that [`as_task`] gives task `n`.
pub fn task_arn(n: usize) -> String {
    format!("arn:aws:ecs:eu-west-1:123456789012:task/mi-cluster/{n:032x}")
}

/// A `/task` document and its `/task/stats` as task `n` of an instance: its ARN [`task_arn`]`(n)`,
/// container `k`'s id suffixed `-n-k` (in both documents), and, with `containers`, its
/// containers repeated (names suffixed `-k`) until it has that many. Compact JSON, as the agent
/// sends it.
pub fn as_task(task: &str, stats: &str, n: usize, containers: Option<usize>) -> (String, String) {
    let Ok(Value::Object(mut task)) = json::from_str::<Value>(task) else {
        panic!("task: not a JSON object");
    };
    let Ok(Value::Object(stats)) = json::from_str::<Value>(stats) else {
        panic!("stats: not a JSON object");
    };
    task.insert("TaskARN".into(), Value::String(task_arn(n)));
    let originals: Vec<Value> = match task.get("Containers") {
        Some(Value::Array(list)) => list.to_vec(),
        _ => Vec::new(),
    };
    let wanted = containers.unwrap_or(originals.len());
    let mut list = Array::new();
    let mut new_stats = miniserde::json::Object::new();
    for k in 0..wanted {
        let Some(Value::Object(original)) = originals.get(k % originals.len().max(1)) else {
            break;
        };
        let mut container = original.clone();
        let old_id = match container.get("DockerId") {
            Some(Value::String(id)) => id.clone(),
            _ => String::new(),
        };
        let new_id = format!("{old_id}-{n}-{k}");
        container.insert("DockerId".into(), Value::String(new_id.clone()));
        if k >= originals.len()
            && let Some(Value::String(name)) = container.get("Name").cloned()
        {
            container.insert("Name".into(), Value::String(format!("{name}-{k}")));
        }
        if let Some(entry) = stats.get(&old_id) {
            new_stats.insert(new_id, entry.clone());
        }
        list.push(Value::Object(container));
    }
    task.insert("Containers".into(), Value::Array(list));
    (
        json::to_string(&Value::Object(task)),
        json::to_string(&Value::Object(new_stats)),
    )
}
