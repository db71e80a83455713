//! The benchmarks' stack: a real Prosody (the project's one configuration, from
//! tutti-test-harness), the bridges and the focus as child processes, their addresses, CPU time
//! and memory, and their /metrics. Included by `bench-focus-load` and `bench-soak`.

#![allow(dead_code)] // included by several benchmarks, each using a different part

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use tutti_test_harness::certs::TestPki;
use tutti_test_harness::prosody::{self, Gc, Prosody};

pub const DOMAIN: &str = "localhost";
pub const GUEST_DOMAIN: &str = "guest.localhost";
pub const MUC: &str = "conference.localhost";
pub const C2S_PORT: u16 = 5222;
const FOCUS_PASSWORD: &str = "focus-secret";

/// A child process killed and reaped when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.0.id())
    }

    /// Resident set size, KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.0.id())
    }
}

/// User and system CPU time of process `pid`.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("malformed /proc/PID/stat")?
        .1
        .split_whitespace()
        .collect();
    // Fields 14 and 15 of stat(5) (utime, stime) are the 12th and 13th after the name.
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / per_second)
}

/// The first stdout line of `child` as JSON, within `timeout`; the rest of stdout is drained.
pub fn ready_line(child: &mut Child, timeout: Duration) -> anyhow::Result<serde_json::Value> {
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let mut rest = String::new();
        while reader.read_line(&mut rest).map(|n| n > 0).unwrap_or(false) {
            rest.clear();
        }
    });
    let line = rx.recv_timeout(timeout).context("no ready line")?;
    serde_json::from_str(&line).with_context(|| format!("ready line {line:?}"))
}

pub fn address(ready: &serde_json::Value, key: &str) -> anyhow::Result<SocketAddr> {
    ready[key]
        .as_str()
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("no '{key}' address in {ready}"))
}

/// Prosody, the bridges and the focus, stopped (in reverse order) when dropped.
pub struct Stack {
    pub focus: Process,
    pub focus_http: SocketAddr,
    /// Each bridge, its HTTP address (metrics) and its gRPC address.
    pub bridges: Vec<(Process, SocketAddr, SocketAddr)>,
    pub prosody: Prosody,
}

/// What differs between the benchmarks' stacks.
pub struct StackOptions<'a> {
    pub bridge: &'a Path,
    pub focus: &'a Path,
    /// Names the run directory (`tutti-bench-NAME-PID` in the temporary directory).
    pub name: &'a str,
    pub prosody_gc: Gc,
    /// Focus -> bridge gRPC over mutual TLS with test certificates, else plaintext on loopback.
    pub grpc_tls: bool,
    pub bridges: usize,
    /// More settings for the bridges.
    pub bridge_env: &'a [(&'a str, &'a str)],
}

impl Stack {
    pub fn bridges_cpu_seconds(&self) -> anyhow::Result<f64> {
        self.bridges.iter().map(|(b, _, _)| b.cpu_seconds()).sum()
    }

    pub fn prosody_cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.prosody.pid().context("prosody is not running")?)
    }
}

pub fn start_stack(args: &StackOptions) -> anyhow::Result<Stack> {
    // The MUC keeps no history; Prosody 0.12's MUC has no rate limit of its own, and the
    // configuration disables mod_limits (no c2s rate limit).
    let dir =
        std::env::temp_dir().join(format!("tutti-bench-{}-{}", args.name, std::process::id()));
    let config = prosody::Config {
        domain: DOMAIN.to_owned(),
        c2s_port: C2S_PORT,
        max_history: Some(0),
        gc: args.prosody_gc,
        ..prosody::Config::new(dir.clone())
    };
    if config.guest_domain() != GUEST_DOMAIN || config.muc_domain() != MUC {
        bail!("the Prosody configuration's hosts are not {GUEST_DOMAIN} and {MUC}");
    }
    let mut prosody = Prosody::configure(config)?;
    prosody.register("focus", FOCUS_PASSWORD)?;
    prosody.start()?;
    // With --grpc-tls on: certificates in Prosody's directory, removed with it.
    let (bridge_tls, focus_tls) = if args.grpc_tls {
        let pki = TestPki::write(&dir.join("grpc-tls"))?;
        let path = |file: PathBuf| file.display().to_string();
        (
            vec![
                ("TUTTI_BRIDGE_GRPC_TLS_CA", path(pki.cert("ca"))),
                ("TUTTI_BRIDGE_GRPC_TLS_CERT", path(pki.cert("bridge"))),
                ("TUTTI_BRIDGE_GRPC_TLS_KEY", path(pki.key("bridge"))),
            ],
            vec![
                ("TUTTI_FOCUS_BRIDGE_TLS_CA", path(pki.cert("ca"))),
                ("TUTTI_FOCUS_BRIDGE_TLS_CERT", path(pki.cert("focus"))),
                ("TUTTI_FOCUS_BRIDGE_TLS_KEY", path(pki.key("focus"))),
            ],
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let mut bridges = Vec::with_capacity(args.bridges);
    let mut urls = Vec::with_capacity(args.bridges);
    for _ in 0..args.bridges {
        let mut bridge = Process(
            Command::new(args.bridge)
                .env("TUTTI_BRIDGE_GRPC_ADDRESS", "127.0.0.1:0")
                .env("TUTTI_BRIDGE_HTTP_ADDRESS", "127.0.0.1:0")
                .env("TUTTI_BRIDGE_MEDIA_ADDRESS", "127.0.0.1:0")
                .env("RUST_LOG", "warn")
                .envs(bridge_tls.iter().cloned())
                .envs(args.bridge_env.iter().copied())
                .stdout(Stdio::piped())
                .spawn()
                .context("starting a bridge")?,
        );
        let ready = ready_line(&mut bridge.0, Duration::from_secs(10))?;
        let grpc = address(&ready, "grpc")?;
        // The test bridge certificate names localhost and 127.0.0.1.
        let scheme = if args.grpc_tls { "https" } else { "http" };
        urls.push(format!("{scheme}://{grpc}"));
        bridges.push((bridge, address(&ready, "http")?, grpc));
    }
    let mut focus = Process(
        Command::new(args.focus)
            .env("TUTTI_FOCUS_JID", format!("focus@{DOMAIN}"))
            .env("TUTTI_FOCUS_PASSWORD", FOCUS_PASSWORD)
            .env("TUTTI_FOCUS_XMPP_SERVER", format!("127.0.0.1:{C2S_PORT}"))
            .env("TUTTI_FOCUS_XMPP_SECURITY", "plaintext")
            .env("TUTTI_FOCUS_MUC_DOMAIN", MUC)
            .env("TUTTI_FOCUS_BRIDGE_URLS", urls.join(","))
            .envs(focus_tls)
            .env("TUTTI_FOCUS_HTTP_ADDRESS", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the focus")?,
    );
    let focus_http = address(&ready_line(&mut focus.0, Duration::from_secs(15))?, "http")?;
    Ok(Stack {
        focus,
        focus_http,
        bridges,
        prosody,
    })
}

/// A /metrics (of the focus or a bridge) as name (with labels) → value.
pub async fn scrape(http: SocketAddr) -> anyhow::Result<HashMap<String, f64>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(http).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: focus\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok(body
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter_map(|(name, value)| Some((name.to_owned(), value.parse().ok()?)))
        .collect())
}

/// Resident set size of process `pid`, KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/PID/status")
}
