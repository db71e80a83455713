//! `bridge [--config FILE]`: runs one media bridge. On start it prints one JSON line to
//! stdout with the addresses it bound (`{"grpc":..,"http":..,"media":..,"fingerprint":..}`),
//! so a port of 0 in the config can be discovered by whoever started it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use tokio::signal::unix::{signal, SignalKind};
use tutti_bridge::config::Config;

/// With the `alloc-counter` feature every heap allocation is counted (see `metrics`).
#[cfg(feature = "alloc-counter")]
#[global_allocator]
static ALLOCATOR: tutti_bridge::metrics::CountingAllocator =
    tutti_bridge::metrics::CountingAllocator;

fn usage() -> ExitCode {
    eprintln!("usage: bridge [--config FILE]\nEnvironment overrides: TUTTI_BRIDGE_<FIELD> (see docs/bridge.md)");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let mut config_file: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => match args.next() {
                Some(path) => config_file = Some(path.into()),
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    let config = match Config::load(config_file.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("bridge: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    // Ctrl-C (SIGINT) stops at once; SIGTERM (what service managers and Kubernetes send)
    // drains: no new conferences, exit once empty or at drain_timeout_secs. Both handlers are
    // installed here, before the ready line: a signal sent as soon as the bridge answers must
    // not meet the default action (a test's SIGTERM right after its first allocation did).
    let mut interrupt = match signal(SignalKind::interrupt()) {
        Ok(interrupt) => interrupt,
        Err(e) => {
            eprintln!("bridge: installing the SIGINT handler: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            eprintln!("bridge: installing the SIGTERM handler: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = async move {
        interrupt.recv().await;
    };
    let drain = async move {
        term.recv().await;
    };
    let announce = |bound: &tutti_bridge::Bound| {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(
            stdout,
            "{}",
            serde_json::to_string(bound).unwrap_or_default()
        );
        let _ = stdout.flush();
    };
    match tutti_bridge::run(config, announce, shutdown, drain).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}
