//! What the benchmark reads from the system: CPU time of a process (all its threads) and of each
//! CPU from /proc, UDP buffer errors of the namespace, and the bridge's /metrics.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context};

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// utime + stime of every thread of `pid` ("self" for this process), in seconds.
pub fn process_cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces; the fields after it are space-separated.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) are the 12th and 13th after the name.
    let utime: f64 = fields.get(11).context("no utime")?.parse()?;
    let stime: f64 = fields.get(12).context("no stime")?.parse()?;
    Ok((utime + stime) / clock_ticks_per_second())
}

/// (busy, total) jiffies of one CPU from /proc/stat; busy includes irq and softirq time, which
/// /proc/PID/stat charges to no process (loopback delivery runs in softirq).
pub fn cpu_jiffies(cpu: usize) -> anyhow::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let name = format!("cpu{cpu}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))
        .with_context(|| format!("no {name} in /proc/stat"))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    // user nice system idle iowait irq softirq steal (guest time is included in user).
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Ok((total - idle, total))
}

/// RcvbufErrors + SndbufErrors of UDP in this network namespace (/proc/net/snmp).
pub fn udp_buffer_errors() -> anyhow::Result<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp")?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        bail!("no Udp lines in /proc/net/snmp");
    };
    let mut errors = 0;
    for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
        if name == "RcvbufErrors" || name == "SndbufErrors" {
            errors += value.parse::<u64>()?;
        }
    }
    Ok(errors)
}

/// The bridge's /metrics as metric name (with labels) → value.
pub fn scrape(http: SocketAddr) -> anyhow::Result<HashMap<String, f64>> {
    let mut stream = TcpStream::connect_timeout(&http, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: bridge\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .context("malformed HTTP response")?;
    Ok(body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect())
}

/// Media packets (audio + video) the bridge reports as sent.
pub fn media_packets_sent(metrics: &HashMap<String, f64>) -> f64 {
    ["audio", "video"]
        .iter()
        .map(|m| {
            metrics
                .get(&format!("tutti_bridge_packets_sent_total{{media=\"{m}\"}}"))
                .copied()
                .unwrap_or(0.0)
        })
        .sum()
}

/// One metric's value.
pub fn metric(metrics: &HashMap<String, f64>, name: &str) -> anyhow::Result<f64> {
    metrics
        .get(name)
        .copied()
        .with_context(|| format!("the bridge reports no {name}"))
}

pub fn allocations(metrics: &HashMap<String, f64>) -> anyhow::Result<f64> {
    metrics
        .get("tutti_bridge_allocations_total")
        .copied()
        .context(
            "no tutti_bridge_allocations_total: build the bridge with --features alloc-counter",
        )
}
