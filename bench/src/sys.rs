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

/// The machine's load average over the last minute (/proc/loadavg): how busy the shared machine
/// was around a run.
pub fn load_average() -> anyhow::Result<f64> {
    let loadavg = std::fs::read_to_string("/proc/loadavg")?;
    Ok(loadavg
        .split_whitespace()
        .next()
        .context("empty /proc/loadavg")?
        .parse()?)
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
    Ok(http_body(&response)?
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect())
}

/// The body of a whole HTTP/1.x response read up to the server's close: an error unless the
/// status is 200; a body longer than its Content-Length is cut to it; chunked bodies are refused.
pub fn http_body(response: &str) -> anyhow::Result<&str> {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("malformed HTTP response: no end of headers")?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status
        .split_whitespace()
        .nth(1)
        .context("malformed HTTP status line")?;
    if code != "200" {
        bail!("HTTP {status:?}: {}", body.trim());
    }
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") && value != "identity" {
            bail!("HTTP body in transfer encoding {value:?}: not supported");
        }
    }
    match length {
        Some(n) => body
            .get(..n)
            .with_context(|| format!("HTTP body shorter than its Content-Length {n}")),
        None => Ok(body),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_bodies() {
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        assert_eq!(http_body(ok).unwrap(), "{}");
        let close_delimited = "HTTP/1.0 200 OK\r\n\r\nline 1\nline 2\n";
        assert_eq!(http_body(close_delimited).unwrap(), "line 1\nline 2\n");
        let cut = "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabcdef";
        assert_eq!(http_body(cut).unwrap(), "abc");
        let short = "HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\nabc";
        assert!(http_body(short).is_err());
        let error = "HTTP/1.1 404 Not Found\r\n\r\nno such path";
        let message = format!("{:#}", http_body(error).unwrap_err());
        assert!(
            message.contains("404") && message.contains("no such path"),
            "{message}"
        );
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        assert!(http_body(chunked).is_err());
        assert!(http_body("HTTP/1.1 200 OK").is_err());
        assert!(http_body("").is_err());
    }
}
