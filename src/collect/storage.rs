//! Group `storage`: bytes and operations read and written, by direction, summed over devices,
//! from `blkio_stats`.

use super::{Metric, Subject, Switch, push_present};
use crate::exposition::Sample;
use crate::model::{BlkioEntry, BlkioOp};

pub(super) const SWITCH: Switch = Switch {
    name: "storage",
    default: true,
    help: "Container bytes and operations read from and written to block\ndevices.",
};

pub(super) fn collect<'a>(c: &Subject<'a>, out: &mut Vec<Sample<'a>>) {
    let Some(b) = c.stats.and_then(|s| s.blkio_stats.as_ref()) else {
        return;
    };
    let (bytes, ops) = (&b.io_service_bytes_recursive, &b.io_serviced_recursive);
    let figures = [
        (Metric::ContainerStorageRead, op_sum(bytes, BlkioOp::Read)),
        (Metric::ContainerStorageWrite, op_sum(bytes, BlkioOp::Write)),
        (Metric::ContainerStorageReadOps, op_sum(ops, BlkioOp::Read)),
        (
            Metric::ContainerStorageWriteOps,
            op_sum(ops, BlkioOp::Write),
        ),
    ];
    push_present(out, &figures, &[c.name]);
}

/// The sum over devices of `op`'s entries, or `None` when no entry of that op has a number (a
/// list of Windows' `"None"` values is no count of 0). Kept in u128 so that no number of
/// devices can overflow it before the conversion to f64.
fn op_sum(entries: &Option<Vec<BlkioEntry>>, op: BlkioOp) -> Option<f64> {
    let matching = entries.iter().flatten().filter(|e| e.op == Some(op));
    let values = matching.filter_map(|e| e.value).map(u128::from);
    values.reduce(|sum, v| sum + v).map(|sum| sum as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::tests::{edge_samples as got, owned};

    /// Only entries with a number count; an op with none is left out, not 0.
    #[test]
    fn storage_rules_at_the_edges() {
        assert_eq!(
            got(Metric::ContainerStorageRead),
            owned(&[("bridged", 7.0)])
        );
        assert_eq!(got(Metric::ContainerStorageWrite), owned(&[]));
        assert_eq!(got(Metric::ContainerStorageReadOps), owned(&[]));
    }
}
