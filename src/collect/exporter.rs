//! The exporter's own families: client_golang's process collector and promhttp's counters, as the
//! Go exporter writes them unless `--web.disable-exporter-metrics`.

use super::{Metric, push, push_present};
use crate::exposition::Sample;
use crate::process::ProcessStats;

/// The exporter's own metrics.
pub struct Exporter<'a> {
    pub process: &'a ProcessStats,
    pub answered: Answered,
    /// Metrics requests received and not yet answered, this one included.
    pub in_flight: u64,
}

/// Metrics requests answered so far, by status, for promhttp's counter. 200 and 503 (over
/// `--web.max-requests`, or while shutting down) occur; 500 never, as a scrape never fails as a
/// whole, but it is written from the start, as client_golang does, so that dashboards which
/// select `code="500"` find a series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answered {
    pub ok: u64,
    pub unavailable: u64,
}

pub(super) fn collect<'a>(exporter: &Exporter<'a>, out: &mut Vec<Sample<'a>>) {
    let p = exporter.process;
    let figures = [
        (Metric::ProcessCpu, p.cpu_seconds),
        (Metric::ProcessMaxFds, p.max_fds),
        (Metric::ProcessNetworkRx, p.network_receive_bytes),
        (Metric::ProcessNetworkTx, p.network_transmit_bytes),
        (Metric::ProcessOpenFds, p.open_fds),
        (Metric::ProcessResident, p.resident_bytes),
        (Metric::ProcessStartTime, p.start_time_seconds),
        (Metric::ProcessVirtual, p.virtual_bytes),
        (Metric::ProcessVirtualMax, p.virtual_max_bytes),
    ];
    push_present(out, &figures, &[]);
    push(out, Metric::ScrapesInFlight, &[], exporter.in_flight as f64);
    let a = exporter.answered;
    for (code, count) in [("200", a.ok), ("500", 0), ("503", a.unavailable)] {
        push(out, Metric::ScrapeRequests, &[code], count as f64);
    }
}
