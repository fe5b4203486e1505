//! What /proc says about a process: resident memory, CPU time, limits.

use anyhow::{Context as _, Result, anyhow};

/// A `Vm…:` line of /proc/PID/status, in KiB.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Resident set size of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("process {pid}"))?;
    status_kib(&status, "VmRSS").ok_or_else(|| anyhow!("no VmRSS for process {pid}"))
}

/// utime + stime (clock ticks) from a /proc/PID/stat line. The command name
/// (field 2) may hold spaces and parentheses, so fields are counted after
/// the last `)`.
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state(3) ppid(4) … utime(14) stime(15).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU seconds `pid` has used (user + system), assuming 100 ticks per
/// second (Linux's USER_HZ on every mainstream architecture).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("process {pid}"))?;
    stat_cpu_ticks(&stat)
        .map(|t| t as f64 / 100.0)
        .ok_or_else(|| anyhow!("unreadable /proc/{pid}/stat"))
}

/// The soft limit on open files from /proc/self/limits text.
pub fn open_files_soft_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Fails with advice when this process may not open `needed` files.
pub fn require_open_files(needed: u64) -> Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits").context("/proc/self/limits")?;
    let soft = open_files_soft_limit(&limits).unwrap_or(0);
    if soft < needed {
        anyhow::bail!(
            "this scenario needs about {needed} open files but the limit is {soft}: raise it first \
             (`ulimit -n $(ulimit -Hn)`; `just load` does this)"
        );
    }
    Ok(())
}

/// The machine, for reports: CPU model, logical CPUs, memory, kernel.
pub fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    serde_json::json!({
        "cpu_model": model,
        "cpus": cpus,
        "memory_kib": status_kib(&meminfo, "MemTotal"),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "loadavg_at_start": load.trim(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_fields() {
        let status = "Name:\teagate\nVmPeak:\t  400000 kB\nVmRSS:\t   41234 kB\nVmHWM:\t 50000 kB\n";
        assert_eq!(status_kib(status, "VmRSS"), Some(41234));
        assert_eq!(status_kib(status, "VmHWM"), Some(50000));
        assert_eq!(status_kib(status, "VmSwap"), None);
        assert_eq!(
            status_kib("MemTotal:       24684032 kB\n", "MemTotal"),
            Some(24684032)
        );
    }

    #[test]
    fn reads_cpu_ticks_after_an_awkward_command_name() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1 2 3";
        assert_eq!(stat_cpu_ticks(stat), Some(300));
        assert_eq!(stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn reads_the_open_files_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            20000                20000                files     \n";
        assert_eq!(open_files_soft_limit(limits), Some(20000));
        assert_eq!(open_files_soft_limit("nothing"), None);
    }

    #[test]
    fn this_process_is_visible() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(cpu_seconds(me).unwrap() >= 0.0);
    }
}
