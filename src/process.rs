//! The exporter's own process metrics, read from `/proc/self` as client_golang's process
//! collector reads them, so the values mean the same as the Go exporter's.

use std::fs;

/// Linux reports times in /proc in clock ticks of `USER_HZ`, which is 100 on every Linux ABI
/// (client_golang's procfs assumes the same).
const USER_HZ: f64 = 100.0;

/// One reading; a figure that could not be read is `None` and its metric is left out.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<f64>,
    pub virtual_bytes: Option<f64>,
    pub virtual_max_bytes: Option<f64>,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
    pub start_time_seconds: Option<f64>,
    /// IP bytes received and sent in the process's network namespace (a whole task in awsvpc
    /// mode), as client_golang 1.21 reports them.
    pub network_receive_bytes: Option<f64>,
    pub network_transmit_bytes: Option<f64>,
}

/// Reads the figures that change; `start_time_seconds` is the one read at start-up by
/// [`start_time_seconds`] and passed in.
pub fn read(start_time_seconds: Option<f64>) -> ProcessStats {
    let stat = fs::read_to_string("/proc/self/stat").ok();
    let stat = stat.as_deref().and_then(parse_stat);
    let status = fs::read_to_string("/proc/self/status").ok();
    let limits = fs::read_to_string("/proc/self/limits").ok();
    let limit = |name| limits.as_deref().and_then(|l| parse_limit(l, name));
    let netstat = fs::read_to_string("/proc/self/net/netstat").ok();
    let netstat = netstat.as_deref().map(parse_ip_octets);
    ProcessStats {
        cpu_seconds: stat.map(Stat::cpu_seconds),
        resident_bytes: status.as_deref().and_then(parse_vm_rss),
        virtual_bytes: stat.map(|s| s.vsize as f64),
        virtual_max_bytes: limit("Max address space"),
        open_fds: fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as f64),
        max_fds: limit("Max open files"),
        start_time_seconds,
        network_receive_bytes: netstat.map(|n| n.0),
        network_transmit_bytes: netstat.map(|n| n.1),
    }
}

/// Process start time in Unix seconds: boot time plus the start tick count.
pub fn start_time_seconds() -> Option<f64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    let start_ticks = parse_stat(&stat)?.starttime;
    let boot = fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(btime as f64 + start_ticks as f64 / USER_HZ)
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    utime: u64,
    stime: u64,
    starttime: u64,
    vsize: u64,
}

impl Stat {
    /// User and system time, from clock ticks.
    fn cpu_seconds(self) -> f64 {
        (self.utime + self.stime) as f64 / USER_HZ
    }
}

/// `/proc/self/stat`: the command name (field 2) is in parentheses and may hold spaces or
/// parentheses itself, so fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<Stat> {
    let after = &stat[stat.rfind(')')? + 1..];
    // `after` starts at field 3 (state); field N is at index N - 3.
    let fields: Vec<&str> = after.split_ascii_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    Some(Stat {
        utime: field(14)?,
        stime: field(15)?,
        starttime: field(22)?,
        vsize: field(23)?,
    })
}

/// `VmRSS:   1234 kB` from `/proc/self/status`: the same page count as `stat`'s rss, in bytes,
/// without needing the page size.
fn parse_vm_rss(status: &str) -> Option<f64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib as f64 * 1024.0)
}

/// The soft limit of one row of `/proc/self/limits`; `unlimited` is `u64::MAX`, as procfs
/// reports it (so Go prints `1.8446744073709552e+19`).
fn parse_limit(limits: &str, name: &str) -> Option<f64> {
    let rest = limits.lines().find_map(|l| l.strip_prefix(name))?;
    let soft = rest.split_ascii_whitespace().next()?;
    if soft == "unlimited" {
        return Some(u64::MAX as f64);
    }
    soft.parse::<u64>().ok().map(|v| v as f64)
}

/// `InOctets` and `OutOctets` of the `IpExt` lines of `/proc/self/net/netstat` (a line of
/// names, then a line of values). As client_golang's procfs, a missing field counts as 0.
fn parse_ip_octets(netstat: &str) -> (f64, f64) {
    let mut lines = netstat.lines().filter_map(|l| l.strip_prefix("IpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return (0.0, 0.0);
    };
    let mut octets = (0.0, 0.0);
    for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
        let value = value.parse::<u64>().map_or(0.0, |v| v as f64);
        match name {
            "InOctets" => octets.0 = value,
            "OutOctets" => octets.1 = value,
            _ => {}
        }
    }
    octets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_names() {
        let line = "42 (ecs (exp) orter) S 1 42 42 0 -1 4194560 120 0 0 0 7 3 0 0 20 0 1 0 \
                    1234 5468160 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0";
        let stat = parse_stat(line).expect("parses");
        assert_eq!(
            stat,
            Stat {
                utime: 7,
                stime: 3,
                starttime: 1234,
                vsize: 5_468_160
            }
        );
        assert_eq!(stat.cpu_seconds(), 0.1);
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn parses_status_and_limits() {
        assert_eq!(
            parse_vm_rss("Name:\tx\nVmRSS:\t    1024 kB\nVmSwap: 0 kB\n"),
            Some(1_048_576.0)
        );
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1048576              1048576              files     \n\
                      Max address space         unlimited            unlimited            bytes     \n";
        assert_eq!(parse_limit(limits, "Max open files"), Some(1_048_576.0));
        assert_eq!(
            parse_limit(limits, "Max address space"),
            Some(1.8446744073709552e19)
        );
        assert_eq!(parse_limit(limits, "Max processes"), None);
    }

    #[test]
    fn parses_ip_octets_from_netstat() {
        let netstat = "TcpExt: SyncookiesSent SyncookiesRecv\nTcpExt: 0 0\n\
                       IpExt: InNoRoutes InOctets OutOctets InMcastOctets\n\
                       IpExt: 0 188748188 188800 12\n";
        assert_eq!(parse_ip_octets(netstat), (188_748_188.0, 188_800.0));
        assert_eq!(parse_ip_octets("IpExt: InOctets\nIpExt: 5\n"), (5.0, 0.0));
        assert_eq!(parse_ip_octets("garbage"), (0.0, 0.0));
    }

    #[test]
    fn reads_this_process() {
        let p = read(start_time_seconds());
        assert!(p.resident_bytes.is_some_and(|r| r > 0.0));
        assert!(p.open_fds.is_some_and(|n| n >= 3.0));
        // This test process started moments ago: boot time plus its start ticks is now, give
        // or take the run so far (a wrong unit or sign is off by minutes to years).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let started = p.start_time_seconds.unwrap_or(0.0);
        assert!(
            (now - 120.0..=now + 1.0).contains(&started),
            "started {started}, now {now}"
        );
        assert!(p.cpu_seconds.is_some());
    }
}
