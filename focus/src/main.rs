//! `focus [--config FILE]`: the Tutti conference focus. It logs in to the XMPP server as an
//! ordinary client (its account's JID is the address clients send conference requests to),
//! joins MUC rooms as `focus`, and runs one Jingle session per participant, with media on the
//! bridge. Once logged in it prints one JSON line to stdout, `{"jid":..,"http":..}` (the bound
//! JID and the address of /metrics and /health), so whoever started it knows it is ready.

mod service;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use futures::StreamExt;
use tokio_xmpp::stanzastream::{Event, StreamEvent};
use tracing::{info, warn};

use service::config::Config;
use service::focus::Focus;
use service::metrics::{self, Metrics};
use service::pool::Bridges;
use tutti_focus::connector::Received;

/// How long the start waits for the bridges to say what conferences they hold.
const SETTLE_BOUND: std::time::Duration = std::time::Duration::from_secs(2);
/// How long a stop (SIGTERM, Ctrl-C) may take to leave the rooms and close the XMPP stream; a
/// server that is down or does not answer does not hold the exit up longer.
const STOP_BOUND: std::time::Duration = std::time::Duration::from_secs(2);
/// The exit status when another focus took the account's resource (see `Replaced`).
const EXIT_REPLACED: u8 = 3;

/// The XMPP server replaced this focus by another that logged in with the same account and
/// resource (a `<conflict/>` stream error). This one exits rather than log in again, which
/// would replace the other in turn, and so on: the newer focus takes the calls over.
#[derive(Debug, thiserror::Error)]
#[error("another focus logged in as {0} (the XMPP server sent <conflict/>): leaving the calls to it and exiting")]
struct Replaced(String);

fn usage() -> ExitCode {
    eprintln!("usage: focus [--config FILE]\nEnvironment overrides: TUTTI_FOCUS_<FIELD> (see docs/focus.md)");
    ExitCode::from(2)
}

/// Stack of every thread of the focus. A stanza is parsed into a tree, read and dropped by
/// functions that recurse once per level of nesting (minidom's, xso's), and a server passes on
/// stanzas of up to `c2s_stanza_size_limit` (Prosody's default: 256 KiB), that is up to about
/// 37,000 levels of `<x></x>`: tokio's default of 2 MiB overflowed at 30,000 (the process
/// aborted). The connections now refuse stanzas nested deeper than 64 levels before they are
/// parsed (`tutti_focus::inbound`); 64 MiB, which held the deepest, stays as the margin. It is
/// address space; pages are only touched as deep as a stanza goes.
const THREAD_STACK_BYTES: usize = 64 << 20;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // More than one rustls crypto provider is compiled into the workspace: choose one, or
    // STARTTLS cannot pick it by itself. An error only means one is installed already.
    let _ = tokio_xmpp::rustls::crypto::aws_lc_rs::default_provider().install_default();
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
    let settings = match Config::load(config_file.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("focus: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("focus: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // On a worker thread, not this one: the main thread's stack is the system's.
    match runtime.block_on(async { tokio::spawn(run(settings)).await }) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("focus: {e:#}");
            if e.is::<Replaced>() {
                ExitCode::from(EXIT_REPLACED)
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("focus: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: service::config::Settings) -> anyhow::Result<()> {
    // Installed before anything can announce the focus ready: a signal that arrives before
    // its handler exists gets the default action, and the rooms would not be left.
    let shutdown = shutdown_signal()?;
    let metrics = Metrics::new();
    let listener = tokio::net::TcpListener::bind(settings.http_address)
        .await
        .map_err(|e| anyhow::anyhow!("binding the HTTP address {}: {e}", settings.http_address))?;
    let http_address = listener.local_addr()?;
    let http = axum::serve(listener, metrics::router(metrics.clone()));
    tokio::spawn(async move {
        if let Err(error) = http.await {
            warn!(%error, "the HTTP server stopped");
        }
    });
    let (bridges, mut found) = Bridges::start(&settings, metrics.clone())?;
    info!(jid = %settings.jid, server = %settings.xmpp_server, "logging in");
    let received = {
        let metrics = metrics.clone();
        Received::new(move |refused| metrics.error(refused.kind()))
    };
    let stream_errors = received.stream_errors.clone();
    let (mut client, bound) = service::login::login(&settings, &received).await?;
    let bound = bound.to_string();
    info!(jid = %bound, "online");
    metrics.set_online(true);
    let (mut focus, mut output) = Focus::new(settings, bridges.clone(), metrics.clone());
    // What an earlier focus left on the bridges reaches its rooms before the configured rooms
    // are joined (a bridge that has not answered by then is heard from later).
    let _ = tokio::time::timeout(SETTLE_BOUND, bridges.settled()).await;
    while let Ok(conferences) = found.try_recv() {
        focus.on_found(conferences);
    }
    focus.on_online();
    // The configured rooms' joins go out before whoever started the focus hears it is ready.
    while let Ok(stanza) = output.stanzas.try_recv() {
        client.send(Box::new(stanza)).await;
    }
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(
            stdout,
            "{}",
            serde_json::json!({ "jid": bound, "http": http_address.to_string() })
        );
        let _ = stdout.flush();
    }
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            event = client.next() => match event {
                Some(Event::Stanza(stanza)) => focus.on_stanza(stanza),
                // A new session after a lost connection: the rooms are gone, and so is the
                // point of what was queued for them.
                Some(Event::Stream(StreamEvent::Reset { .. })) => {
                    metrics.set_online(true);
                    info!("online again: rejoining the rooms");
                    while output.stanzas.try_recv().is_ok() {}
                    focus.on_reconnected();
                }
                Some(Event::Stream(StreamEvent::Resumed)) => {
                    metrics.set_online(true);
                }
                Some(Event::Stream(StreamEvent::Suspended)) => {
                    metrics.set_online(false);
                    if stream_errors.conflict() {
                        return Err(Replaced(bound).into());
                    }
                    match stream_errors.take_last() {
                        Some(condition) => warn!(%condition, "the XMPP server ended the stream; reconnecting"),
                        None => warn!("disconnected from the XMPP server; reconnecting"),
                    }
                }
                None => anyhow::bail!("the XMPP stream stopped"),
            },
            Some(stanza) = output.stanzas.recv() => {
                client.send(Box::new(stanza)).await;
            }
            Some(closed) = output.closed_rooms.recv() => focus.on_room_closed(closed),
            Some(conferences) = found.recv() => focus.on_found(conferences),
            () = &mut shutdown => {
                info!("shutting down: leaving the rooms");
                let stop = async {
                    focus.shutdown().await;
                    while let Ok(stanza) = output.stanzas.try_recv() {
                        client.send(Box::new(stanza)).await;
                    }
                    client.close().await;
                };
                if tokio::time::timeout(STOP_BOUND, stop).await.is_err() {
                    warn!(bound_secs = STOP_BOUND.as_secs(), "the rooms were not left in time (is the XMPP server down?); exiting anyway");
                }
                return Ok(());
            }
        }
    }
}

/// SIGTERM or SIGINT, with both handlers installed when this is called.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| anyhow::anyhow!("installing the SIGTERM handler: {e}"))?;
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|e| anyhow::anyhow!("installing the SIGINT handler: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
    })
}
