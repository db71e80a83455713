//! Harness for the focus's end-to-end tests: a real Prosody, the real bridge binary and the
//! real focus binary, all inside the test's own network namespace with only `lo` up, and XMPP
//! test clients that play lib-jitsi-meet's signalling with tutti-participant's media. The
//! namespace and Prosody (its configuration, accounts, process) come from tutti-test-harness.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jid::{BareJid, Jid};
use minidom::Element;
use tokio_xmpp::connect::{DnsConfig, TcpServerConnector};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::stanzastream::{Event, StanzaStream, StreamEvent};
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::Stanza;
use tutti_focus::jingle::{
    Action, Content, GroupSemantics, Jingle, RtpDescription, Source, SourceGroup,
};
use tutti_focus::jitsi::WebSocket;
use tutti_participant::{Participant, ParticipantConfig};
use tutti_test_harness::ejabberd::{self, Ejabberd};
use tutti_test_harness::netns;
use tutti_test_harness::prosody::{self, Prosody};

#[path = "../common/mod.rs"]
mod common;
#[allow(unused_imports)] // as with dead code: each test binary uses a different part
pub use common::*;

pub const DOMAIN: &str = "localhost";
pub const MUC: &str = "conference.localhost";
pub const C2S_PORT: u16 = 5222;
pub const FOCUS_PASSWORD: &str = "focus-secret";
pub const USER_PASSWORD: &str = "user-secret";

/// As `rerun_in_own_netns`, for a test on ejabberd (`Stack::start_on_ejabberd`): Debian's
/// ejabberd is installed first when missing.
pub fn rerun_in_own_netns_with_ejabberd(test_name: &str) -> bool {
    if !netns::inside_own_netns() {
        ejabberd::ensure_installed().expect("installing ejabberd");
    }
    rerun_in_own_netns(test_name)
}

/// Re-runs the calling test alone inside a fresh network namespace (`lo` up) and returns true
/// in the parent, which then only reports the child's result; returns false inside, where the
/// test body runs. Prosody is installed first (Debian package) when missing: the namespace has
/// no network.
pub fn rerun_in_own_netns(test_name: &str) -> bool {
    if !netns::inside_own_netns() {
        prosody::ensure_installed().expect("installing prosody");
    }
    if netns::rerun_in_own_netns(test_name) {
        return true;
    }
    // Both rustls providers are compiled into the test: choose one (see the focus's main).
    let _ = tokio_xmpp::rustls::crypto::aws_lc_rs::default_provider().install_default();
    false
}

/// The bridge binary: `TUTTI_BRIDGE_BIN`, or `bridge` next to this test's target directory
/// (build it first: `cargo build -p tutti-bridge`).
pub fn bridge_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TUTTI_BRIDGE_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join("bridge");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p tutti-bridge` first, or set TUTTI_BRIDGE_BIN",
        path.display()
    );
    path
}

/// A child process killed and reaped when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads the first stdout line of `child` within `timeout`.
pub fn ready_line(child: &mut Child, timeout: Duration) -> Option<String> {
    let stdout = child.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining so that the child never blocks on a full pipe.
        let mut rest = String::new();
        while reader.read_line(&mut rest).map(|n| n > 0).unwrap_or(false) {
            rest.clear();
        }
    });
    rx.recv_timeout(timeout)
        .ok()
        .filter(|line| !line.is_empty())
}

/// The XMPP server of a stack.
pub enum Server {
    Prosody(Prosody),
    /// Debian's ejabberd, the same domain, port and MUC service (`Stack::start_on_ejabberd`).
    Ejabberd(Ejabberd),
}

/// The whole stack: the XMPP server (Prosody unless said otherwise), bridge, focus.
pub struct Stack {
    /// What the focus processes started by `spawn_focus` wrote to stderr, line by line, once
    /// they were up.
    pub focus_log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    pub server: Server,
    pub bridge: Option<Process>,
    pub bridge_grpc: SocketAddr,
    pub bridge_http: SocketAddr,
    pub focus: Option<Process>,
    pub focus_http: Option<SocketAddr>,
}

impl Stack {
    /// Prosody (plaintext only) with the accounts `focus` and `users`, and the bridge.
    pub fn start(name: &str, users: &[&str]) -> Stack {
        Stack::start_with(name, users, false, true)
    }

    /// As `start`, with Prosody's own MUC defaults: new rooms locked until their owner
    /// configures them, occupants' real JIDs shown to moderators only.
    pub fn start_with_default_rooms(name: &str, users: &[&str]) -> Stack {
        Stack::start_with(name, users, false, false)
    }

    /// As `start`, with Prosody also offering STARTTLS, its certificate for `DOMAIN` issued by
    /// a test CA whose certificate is at `prosody.test_ca()`.
    pub fn start_with_starttls(name: &str, users: &[&str]) -> Stack {
        Stack::start_with(name, users, true, true)
    }

    /// Prosody alone: the test starts its bridges and gives the focus their addresses
    /// (`TUTTI_FOCUS_BRIDGE_URLS`); `bridge_grpc` and `bridge_http` are the discard port, where
    /// nothing listens.
    pub fn start_without_bridge(name: &str, users: &[&str]) -> Stack {
        let prosody = start_prosody(name, users, false, true);
        let nowhere = SocketAddr::from(([127, 0, 0, 1], 9));
        Stack {
            focus_log: Default::default(),
            server: Server::Prosody(prosody),
            bridge: None,
            bridge_grpc: nowhere,
            bridge_http: nowhere,
            focus: None,
            focus_http: None,
        }
    }

    /// As `start`, with these extra environment variables for the bridge (e.g. its gRPC TLS).
    pub fn start_with_bridge(name: &str, users: &[&str], bridge_env: &[(&str, &str)]) -> Stack {
        Stack::start_with_everything(name, users, false, true, bridge_env)
    }

    fn start_with(name: &str, users: &[&str], starttls: bool, open_rooms: bool) -> Stack {
        Stack::start_with_everything(name, users, starttls, open_rooms, &[])
    }

    fn start_with_everything(
        name: &str,
        users: &[&str],
        starttls: bool,
        open_rooms: bool,
        bridge_env: &[(&str, &str)],
    ) -> Stack {
        let prosody = start_prosody(name, users, starttls, open_rooms);
        let (bridge, bridge_grpc, bridge_http) = start_bridge(bridge_env);
        Stack {
            focus_log: Default::default(),
            server: Server::Prosody(prosody),
            bridge: Some(bridge),
            bridge_grpc,
            bridge_http,
            focus: None,
            focus_http: None,
        }
    }

    /// As `start`, on ejabberd instead of Prosody: the same domain, client port and MUC
    /// service, rooms open with real JIDs shown, the accounts `focus` and `users`.
    pub fn start_on_ejabberd(name: &str, users: &[&str]) -> Stack {
        let dir = std::env::temp_dir().join(format!("tutti-focus-{name}-{}", std::process::id()));
        let accounts: Vec<(&str, &str)> = std::iter::once(("focus", FOCUS_PASSWORD))
            .chain(users.iter().map(|user| (*user, USER_PASSWORD)))
            .collect();
        let server = Ejabberd::start(dir, DOMAIN, C2S_PORT, &accounts).expect("starting ejabberd");
        let (bridge, bridge_grpc, bridge_http) = start_bridge(&[]);
        Stack {
            focus_log: Default::default(),
            server: Server::Ejabberd(server),
            bridge: Some(bridge),
            bridge_grpc,
            bridge_http,
            focus: None,
            focus_http: None,
        }
    }

    /// The stack's Prosody (panics on ejabberd).
    pub fn prosody(&mut self) -> &mut Prosody {
        match &mut self.server {
            Server::Prosody(prosody) => prosody,
            Server::Ejabberd(_) => panic!("this stack runs ejabberd"),
        }
    }

    /// Starts the focus with these extra environment variables; panics unless it comes up.
    pub fn start_focus(&mut self, env: &[(&str, &str)]) {
        self.start_focus_resolving_with(env, None);
    }

    /// As `start_focus`, resolving names with the DNS server `resolv_conf` names (see
    /// `tutti_test_harness::dns`).
    pub fn start_focus_resolving_with(&mut self, env: &[(&str, &str)], resolv_conf: Option<&Path>) {
        let (mut child, line) = self.spawn_focus_resolving_with(env, resolv_conf);
        let Some(line) = line else {
            let _ = child.kill();
            let output = child.wait_with_output().ok();
            panic!("the focus did not come up: {output:?}")
        };
        let ready: serde_json::Value = serde_json::from_str(&line).expect("focus ready line");
        self.focus_http = ready["http"].as_str().and_then(|a| a.parse().ok());
        self.focus = Some(Process(child));
    }

    /// The focus process and its ready line, if it printed one within 15 s.
    pub fn spawn_focus(&self, env: &[(&str, &str)]) -> (Child, Option<String>) {
        self.spawn_focus_resolving_with(env, None)
    }

    fn spawn_focus_resolving_with(
        &self,
        env: &[(&str, &str)],
        resolv_conf: Option<&Path>,
    ) -> (Child, Option<String>) {
        let focus = env!("CARGO_BIN_EXE_focus");
        let mut command = match resolv_conf {
            Some(resolv_conf) => tutti_test_harness::dns::with_resolv_conf(resolv_conf, focus),
            None => Command::new(focus),
        };
        command
            .env("TUTTI_FOCUS_JID", format!("focus@{DOMAIN}"))
            .env("TUTTI_FOCUS_PASSWORD", FOCUS_PASSWORD)
            .env("TUTTI_FOCUS_XMPP_SERVER", format!("127.0.0.1:{C2S_PORT}"))
            .env("TUTTI_FOCUS_XMPP_SECURITY", "plaintext")
            .env("TUTTI_FOCUS_MUC_DOMAIN", MUC)
            .env(
                "TUTTI_FOCUS_BRIDGE_URL",
                format!("http://{}", self.bridge_grpc),
            )
            .env("TUTTI_FOCUS_HTTP_ADDRESS", "127.0.0.1:0")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starting the focus binary");
        let line = ready_line(&mut child, Duration::from_secs(15));
        if line.is_some() {
            if let Some(stderr) = child.stderr.take() {
                let log = self.focus_log.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                        eprintln!("[focus] {line}");
                        if let Ok(mut log) = log.lock() {
                            log.push(line);
                        }
                    }
                });
            }
        }
        (child, line)
    }

    /// A plain HTTP/1.0 GET on the focus's HTTP port: (status line, body).
    pub async fn focus_http_get(&self, path: &str) -> (String, String) {
        http_get(self.focus_http.expect("the focus is running"), path).await
    }

    /// A plain HTTP/1.0 GET on the bridge's HTTP port: (status line, body).
    pub async fn bridge_http_get(&self, path: &str) -> (String, String) {
        http_get(self.bridge_http, path).await
    }

    /// A gauge or counter from the focus's /metrics (labels included in `name`).
    pub async fn focus_metric(&self, name: &str) -> Option<f64> {
        metric_at(self.focus_http.expect("the focus is running"), name).await
    }

    /// A gauge or counter from the bridge's /metrics (labels included in `name`).
    pub async fn bridge_metric(&self, name: &str) -> Option<f64> {
        metric_at(self.bridge_http, name).await
    }

    /// Waits (up to `TIMEOUT`) until the bridge's metric `name` is `value`; the bridge's
    /// workers apply changes a moment after its API answers.
    pub async fn bridge_metric_becomes(&self, name: &str, value: f64) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let now = self.bridge_metric(name).await;
            if now == Some(value) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the bridge's {name} stayed {now:?}, not {value}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Aborts the focus's TCP connection to Prosody (`ss -K`, as a network failure would):
    /// both ends see it fail, and the focus must log in again by itself.
    pub fn cut_focus_connection(&self) {
        let pid = self.focus.as_ref().expect("the focus is running").0.id();
        let sockets = Command::new("ss")
            .args(["-tnpH", "state", "established"])
            .output()
            .expect("running ss");
        let sockets = String::from_utf8_lossy(&sockets.stdout);
        let server = format!("127.0.0.1:{C2S_PORT}");
        let local = sockets
            .lines()
            .find(|line| line.contains(&format!("pid={pid},")) && line.contains(&server))
            .and_then(|line| line.split_whitespace().nth(2))
            .unwrap_or_else(|| panic!("no connection of the focus in:\n{sockets}"));
        let port = local.rsplit_once(':').expect("an address").1;
        let status = Command::new("ss")
            .args([
                "-K",
                "state",
                "established",
                "sport",
                "=",
                &format!(":{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("running ss -K");
        assert!(status.success(), "ss -K: {status}");
    }

    /// Freezes the bridge (SIGSTOP): its sockets stay open, and nothing it is asked is
    /// answered until `resume_bridge`.
    pub fn pause_bridge(&self) {
        self.signal_bridge("-STOP");
    }

    pub fn resume_bridge(&self) {
        self.signal_bridge("-CONT");
    }

    fn signal_bridge(&self, signal: &str) {
        let pid = self.bridge.as_ref().expect("the bridge is running").0.id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill {signal} {pid}: {status}");
    }

    /// Waits (up to `TIMEOUT`) until the focus's /metrics has the line `line`.
    pub async fn focus_metric_becomes(&self, line: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let (_, metrics) = self.focus_http_get("/metrics").await;
            if metrics.lines().any(|l| l == line) {
                return;
            }
            assert!(Instant::now() < deadline, "no '{line}' in:\n{metrics}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether a focus wrote a line containing `text` to stderr.
    pub fn focus_logged(&self, text: &str) -> bool {
        self.focus_log
            .lock()
            .is_ok_and(|log| log.iter().any(|line| line.contains(text)))
    }

    /// Stops Prosody, as a crash would; `start_prosody_again` brings it back with its accounts.
    pub fn stop_prosody(&mut self) {
        self.prosody().stop();
    }

    pub fn start_prosody_again(&mut self) {
        self.prosody().start().expect("starting prosody again");
    }

    /// Waits (up to `wait`) until the focus's /health answers with `status` (e.g. "200").
    pub async fn focus_health_becomes(&self, status: &str, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            let (status_line, body) = self.focus_http_get("/health").await;
            if status_line.split_whitespace().nth(1) == Some(status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "/health still says {status_line}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the bridge (to test the focus's handling of a dead one).
    pub fn stop_bridge(&mut self) {
        self.bridge = None;
    }

    /// Stops the focus with SIGTERM, as systemd or Kubernetes would, and waits for its exit
    /// (within 10 s; it must succeed).
    pub fn stop_focus_gracefully(&mut self) {
        let mut focus = self.focus.take().expect("the focus is running");
        let status = Command::new("kill")
            .args(["-TERM", &focus.0.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM: {status}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(exit) = focus.0.try_wait().expect("waiting for the focus") {
                assert!(exit.success(), "the focus exited with {exit}");
                return;
            }
            assert!(Instant::now() < deadline, "the focus did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the bridge (`kill -9`) and starts a new bridge process on the same gRPC and HTTP
    /// addresses: to the focus, the same bridge restarted, having lost every conference.
    pub fn restart_bridge(&mut self) {
        self.bridge = None;
        let (grpc, http) = (self.bridge_grpc.to_string(), self.bridge_http.to_string());
        let (bridge, bridge_grpc, bridge_http) = start_bridge(&[
            ("TUTTI_BRIDGE_GRPC_ADDRESS", grpc.as_str()),
            ("TUTTI_BRIDGE_HTTP_ADDRESS", http.as_str()),
        ]);
        assert_eq!(
            (bridge_grpc, bridge_http),
            (self.bridge_grpc, self.bridge_http)
        );
        self.bridge = Some(bridge);
    }
}

/// The metric `name` (with its labels as printed) on the `/metrics` of `http`.
pub async fn metric_at(http: SocketAddr, name: &str) -> Option<f64> {
    let (_, body) = http_get(http, "/metrics").await;
    body.lines()
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(metric, _)| *metric == name)
        .and_then(|(_, value)| value.parse().ok())
}

/// A plain HTTP/1.0 GET: (status line, body).
async fn http_get(address: SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: tutti\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

impl Drop for Stack {
    fn drop(&mut self) {
        // The focus first, then the bridge; the server (and its directory) goes last, as a
        // field.
        self.focus = None;
        self.bridge = None;
    }
}

/// Prosody with the accounts `focus` and `users`.
fn start_prosody(name: &str, users: &[&str], starttls: bool, open_rooms: bool) -> Prosody {
    let dir = std::env::temp_dir().join(format!("tutti-focus-{name}-{}", std::process::id()));
    let config = prosody::Config {
        domain: DOMAIN.to_owned(),
        c2s_port: C2S_PORT,
        starttls,
        open_rooms,
        ..prosody::Config::new(dir)
    };
    assert_eq!(config.muc_domain(), MUC);
    let mut prosody = Prosody::configure(config).expect("configuring prosody");
    for (user, password) in std::iter::once(("focus", FOCUS_PASSWORD))
        .chain(users.iter().map(|user| (*user, USER_PASSWORD)))
    {
        prosody.register(user, password).expect("registering");
    }
    prosody.start().expect("starting prosody");
    prosody
}

fn start_bridge(env: &[(&str, &str)]) -> (Process, SocketAddr, SocketAddr) {
    let mut child = Command::new(bridge_binary())
        .env("TUTTI_BRIDGE_GRPC_ADDRESS", "127.0.0.1:0")
        .env("TUTTI_BRIDGE_HTTP_ADDRESS", "127.0.0.1:0")
        .env("TUTTI_BRIDGE_MEDIA_ADDRESS", "127.0.0.1:0")
        // The test participants send one 2 Mbit/s encoding each: no receiver's video is to be
        // left out by the allocator's default bandwidth of 2.5 Mbit/s.
        .env("TUTTI_BRIDGE_RECEIVER_BANDWIDTH_BPS", "1000000000")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the bridge binary");
    let line = ready_line(&mut child, Duration::from_secs(10)).expect("the bridge's ready line");
    let bound: serde_json::Value = serde_json::from_str(&line).expect("bridge ready line");
    let address = |key: &str| -> SocketAddr {
        bound[key]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no {key} address in the bridge's ready line"))
    };
    (Process(child), address("grpc"), address("http"))
}

/// An XMPP client playing a lib-jitsi-meet participant's signalling.
///
/// It drives tokio-xmpp's `StanzaStream` itself rather than its `Client`: the `Client` shares the
/// stream between sending and a receive task behind a mutex whose receive side returns
/// `Pending` without a waker while a send holds the lock (tokio-xmpp 6.0.0), which can stall
/// reception for good.
pub struct XmppClient {
    client: StanzaStream,
    pub jid: Jid,
    inbox: VecDeque<Stanza>,
}

pub const TIMEOUT: Duration = Duration::from_secs(10);

impl XmppClient {
    pub async fn connect(user: &str) -> XmppClient {
        let jid = BareJid::new(&format!("{user}@{DOMAIN}")).unwrap();
        // The stream retries a failed login by itself: a refused one ends in the time-out.
        let mut client = StanzaStream::new_c2s(
            TcpServerConnector::from(DnsConfig::addr(&format!("127.0.0.1:{C2S_PORT}"))),
            jid.into(),
            USER_PASSWORD.to_owned(),
            Timeouts::default(),
            16,
        );
        let bound = tokio::time::timeout(TIMEOUT, async {
            loop {
                match client.next().await {
                    Some(Event::Stream(StreamEvent::Reset { bound_jid, .. })) => return bound_jid,
                    Some(_) => {}
                    None => panic!("{user}: client ended"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{user} could not log in"));
        XmppClient {
            client,
            jid: bound,
            inbox: VecDeque::new(),
        }
    }

    /// Queues `stanza` for sending (in order).
    pub async fn send(&mut self, stanza: impl Into<Stanza>) {
        self.client.send(Box::new(stanza.into())).await;
    }

    /// The first stanza (received earlier or now) for which `pick` returns Some; IQ requests
    /// that are Jingle from the focus are acknowledged when taken.
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&Stanza) -> Option<T>,
    ) -> T {
        if let Some(index) = self.inbox.iter().position(|s| pick(s).is_some()) {
            let stanza = self.inbox.remove(index).unwrap();
            return pick(&stanza).unwrap();
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.client.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("timed out waiting for {what}; inbox: {:?}", self.inbox)
                });
            match event {
                Some(Event::Stanza(stanza)) => {
                    if let Some(found) = pick(&stanza) {
                        return found;
                    }
                    self.inbox.push_back(stanza);
                }
                Some(Event::Stream(StreamEvent::Reset { .. })) => {
                    panic!("the stream was reset while waiting for {what}")
                }
                Some(Event::Stream(_)) => {}
                None => panic!("client ended while waiting for {what}"),
            }
        }
    }

    /// Waits (up to `within`) until the stream was established again after the server closed it
    /// (a new session: the client is in no room any more); stanzas meanwhile are dropped.
    pub async fn reconnected(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let event = tokio::time::timeout_at(deadline, self.client.next())
                .await
                .unwrap_or_else(|_| panic!("{} did not log in again within {within:?}", self.jid));
            match event {
                Some(Event::Stream(StreamEvent::Reset { bound_jid, .. })) => {
                    self.jid = bound_jid;
                    self.inbox.clear();
                    return;
                }
                Some(_) => {}
                None => panic!("client ended while reconnecting"),
            }
        }
    }

    /// Asserts that nothing matching `pick` arrives within `duration`.
    pub async fn expect_none(
        &mut self,
        duration: Duration,
        what: &str,
        pick: impl Fn(&Stanza) -> bool,
    ) {
        assert!(!self.inbox.iter().any(&pick), "unexpected {what}");
        let deadline = tokio::time::Instant::now() + duration;
        while let Ok(event) = tokio::time::timeout_at(deadline, self.client.next()).await {
            if let Some(Event::Stanza(stanza)) = event {
                assert!(!pick(&stanza), "unexpected {what}: {stanza:?}");
                self.inbox.push_back(stanza);
            }
        }
    }

    /// Sends an IQ set and returns the answer (result or error).
    pub async fn request(&mut self, to: Jid, payload: Element) -> Iq {
        let id = format!("req-{}", rand::random::<u64>());
        self.send(Iq::Set {
            from: None,
            to: Some(to),
            id: id.clone(),
            payload,
        })
        .await;
        self.wait_for("an answer", |stanza| match stanza {
            Stanza::Iq(iq @ (Iq::Result { .. } | Iq::Error { .. })) if iq.id() == id => {
                Some(iq.clone())
            }
            _ => None,
        })
        .await
    }

    /// The conference request; returns the answer's `<conference>`.
    pub async fn conference_request(&mut self, room: &str) -> Element {
        let payload = Element::builder("conference", "http://jitsi.org/protocol/focus")
            .attr(rxml::xml_ncname!("room").into(), room)
            .attr(rxml::xml_ncname!("machine-uid").into(), "test")
            .build();
        match self
            .request(Jid::new(&format!("focus@{DOMAIN}/focus")).unwrap(), payload)
            .await
        {
            Iq::Result {
                payload: Some(answer),
                ..
            } => answer,
            other => panic!("conference request refused: {other:?}"),
        }
    }

    pub async fn join(&mut self, room: &str, nick: &str) {
        let presence = Presence::available()
            .with_to(Jid::new(&format!("{room}/{nick}")).unwrap())
            .with_payloads(vec![Element::bare("x", "http://jabber.org/protocol/muc")]);
        self.send(presence).await;
    }

    pub async fn leave(&mut self, room: &str, nick: &str) {
        let presence =
            Presence::unavailable().with_to(Jid::new(&format!("{room}/{nick}")).unwrap());
        self.send(presence).await;
    }

    /// The next Jingle request with `action` (from whom, the request), acknowledged.
    pub async fn next_jingle(&mut self, action: Action) -> (Jid, Jingle) {
        let (from, id, jingle) = self
            .wait_for(&format!("a Jingle {action}"), |stanza| match stanza {
                Stanza::Iq(Iq::Set {
                    from: Some(from),
                    id,
                    payload,
                    ..
                }) => Jingle::from_element(payload)
                    .ok()
                    .filter(|jingle| jingle.action == action)
                    .map(|jingle| (from.clone(), id.clone(), jingle)),
                _ => None,
            })
            .await;
        self.send(Iq::Result {
            from: None,
            to: Some(from.clone()),
            id,
            payload: None,
        })
        .await;
        (from, jingle)
    }
}

/// The bridge-channel URL in a session-initiate's transport.
pub fn bridge_channel_url(initiate: &Jingle) -> String {
    initiate
        .contents
        .iter()
        .find_map(|content| content.transport.as_ref())
        .and_then(|transport| transport.extensions.get::<WebSocket>().ok().flatten())
        .expect("a <web-socket> in the session-initiate's transport")
        .url
}

/// The SSRCs of the sources named `name` in a Jingle's descriptions, in order: for a video
/// source, the SSRC receivers get it under, then its RTX SSRC.
pub fn ssrcs_named(jingle: &Jingle, name: &str) -> Vec<u32> {
    jingle
        .contents
        .iter()
        .filter_map(|content| content.description.as_ref())
        .flat_map(|description| &description.sources)
        .filter(|source| source.name.as_deref() == Some(name))
        .map(|source| source.ssrc)
        .collect()
}

/// The SSRC receivers get `user`'s camera under (minted by the focus), from a Jingle that
/// lists it.
pub fn camera_of(jingle: &Jingle, user: &str) -> u32 {
    *ssrcs_named(jingle, &format!("{user}-v0"))
        .first()
        .unwrap_or_else(|| panic!("{user}'s camera is not in {:?}", ssrcs(jingle)))
}

/// Jingle's application error for a session the receiver does not have, as `error_of` gives it.
pub const UNKNOWN_SESSION: &str = "{urn:xmpp:jingle:errors:1}unknown-session";

/// The error condition name, the application-specific child (`{namespace}name`) and the text
/// of an IQ error.
pub fn error_of(iq: &Iq) -> Option<(String, Option<String>, String)> {
    match iq {
        Iq::Error { error, .. } => Some((
            format!("{:?}", error.defined_condition),
            error
                .other
                .as_ref()
                .map(|other| format!("{{{}}}{}", other.ns(), other.name())),
            error.texts.values().next().cloned().unwrap_or_default(),
        )),
        _ => None,
    }
}

/// A participant that asked for the conference `room`, joined, accepted the focus's offer (as
/// `edit_accept` leaves the session-accept) and connected its media to the bridge.
pub struct Joined {
    pub xmpp: XmppClient,
    pub media: Participant,
    pub config: ParticipantConfig,
    pub initiate: Jingle,
}

pub async fn join_and_accept(
    room: &str,
    user: &str,
    edit_accept: impl FnOnce(&mut Jingle),
) -> Joined {
    join_and_accept_with(room, ParticipantConfig::new(user), edit_accept).await
}

/// As `join_and_accept`, the media as `config` says (its `name` is the user).
pub async fn join_and_accept_with(
    room: &str,
    config: ParticipantConfig,
    edit_accept: impl FnOnce(&mut Jingle),
) -> Joined {
    let user = config.name.clone();
    let mut xmpp = XmppClient::connect(&user).await;
    let answer = xmpp.conference_request(room).await;
    assert_eq!(answer.attr("ready"), Some("true"));
    xmpp.join(room, &user).await;
    let (from, initiate) = xmpp.next_jingle(Action::SessionInitiate).await;
    assert_eq!(from.to_string(), format!("{room}/focus"));
    let media = accept(&mut xmpp, &from, &initiate, &config, edit_accept).await;
    Joined {
        xmpp,
        media,
        config,
        initiate,
    }
}

/// Answers `initiate` with a session-accept (edited by `edit_accept`) and connects a new
/// participant's media to the bridge.
pub async fn accept(
    xmpp: &mut XmppClient,
    focus: &Jid,
    initiate: &Jingle,
    config: &ParticipantConfig,
    edit_accept: impl FnOnce(&mut Jingle),
) -> Participant {
    let media = Participant::bind(config.clone())
        .await
        .expect("binding the participant");
    let mut accept = session_accept(&initiate.sid, config, &media.local_description());
    edit_accept(&mut accept);
    let answer = xmpp.request(focus.clone(), accept.to_element()).await;
    assert!(
        matches!(answer, Iq::Result { .. }),
        "session-accept refused: {answer:?}"
    );
    media
        .connect(&remote_description(initiate), TIMEOUT)
        .await
        .expect("media connects to the bridge");
    media
}

/// A session-accept without the video sources (and their group).
pub fn without_video(accept: &mut Jingle) {
    for description in accept
        .contents
        .iter_mut()
        .filter_map(|content| content.description.as_mut())
        .filter(|description| description.media.as_deref() == Some("video"))
    {
        description.sources.clear();
        description.source_groups.clear();
    }
}

/// A `source-add` or `source-remove` of `user`'s camera (VP8 SSRC and its RTX, FID group), as
/// lib-jitsi-meet sends it.
pub fn video_update(action: Action, sid: &str, user: &str, ssrcs: [u32; 2]) -> Jingle {
    let mut description = RtpDescription::new("video");
    for ssrc in ssrcs {
        let mut source = Source::new(ssrc);
        source.name = Some(format!("{user}-v0"));
        description.sources.push(source);
    }
    description.source_groups = vec![SourceGroup::new(GroupSemantics::Fid, ssrcs.to_vec())];
    let mut content = Content::new("video");
    content.description = Some(description);
    let mut jingle = Jingle::new(action, sid);
    jingle.contents.push(content);
    jingle
}

/// Whether `stanza` is a Jingle request of `action`.
pub fn is_jingle(stanza: &Stanza, action: Action) -> bool {
    matches!(stanza, Stanza::Iq(Iq::Set { payload, .. })
        if Jingle::from_element(payload).is_ok_and(|jingle| jingle.action == action))
}

/// Packets received from `ssrc` so far.
pub fn received(participant: &Participant, ssrc: u32) -> u64 {
    participant
        .stats()
        .received
        .get(&ssrc)
        .map_or(0, |s| s.packets)
}

/// Waits (up to `TIMEOUT`) until `check` holds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// Measuring a call: what honest receivers get while someone misbehaves (hostile_*.rs).

/// Each measured window.
pub const WINDOW: Duration = Duration::from_secs(3);

/// One honest receiver's view of one remote stream at an instant.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    pub packets: u64,
    pub highest_seq: u16,
    pub frames: u64,
}

pub fn seen(receiver: &Participant, ssrc: u32) -> Seen {
    let stats = receiver.stats();
    let stream = stats
        .received
        .get(&ssrc)
        .unwrap_or_else(|| panic!("nothing received on {ssrc}"));
    Seen {
        packets: stream.packets,
        highest_seq: stream.highest_seq,
        frames: stream.frames,
    }
}

/// What a receiver got of a stream over a window.
#[derive(Clone, Copy, Debug)]
pub struct Quality {
    /// Fraction of the packets sent meanwhile (by sequence number) that did not arrive.
    pub loss: f64,
    /// Complete video frames per second (0 for audio).
    pub frame_rate: f64,
}

/// The streams the honest participants get from each other: (name, receiver, SSRC).
pub struct Watched<'a> {
    pub streams: Vec<(String, &'a Participant, u32)>,
}

impl Watched<'_> {
    /// Measures every stream over `WINDOW`.
    pub async fn window(&self) -> Vec<Quality> {
        let start: Vec<(Seen, Instant)> = self
            .streams
            .iter()
            .map(|(_, receiver, ssrc)| (seen(receiver, *ssrc), Instant::now()))
            .collect();
        tokio::time::sleep(WINDOW).await;
        self.streams
            .iter()
            .zip(start)
            .map(|((_, receiver, ssrc), (before, at))| {
                let after = seen(receiver, *ssrc);
                let expected = u64::from(after.highest_seq.wrapping_sub(before.highest_seq));
                let got = after.packets - before.packets;
                Quality {
                    loss: 1.0 - got as f64 / expected.max(1) as f64,
                    frame_rate: (after.frames - before.frames) as f64 / at.elapsed().as_secs_f64(),
                }
            })
            .collect()
    }

    /// The window under attack against the baseline: loss at most 1 percentage point higher,
    /// frame rate at least 90 % of the baseline's.
    pub fn assert_unharmed(&self, what: &str, baseline: &[Quality], attacked: &[Quality]) {
        for (((name, _, _), base), now) in self.streams.iter().zip(baseline).zip(attacked) {
            eprintln!(
                "{what}: {name}: loss {:.2} % (baseline {:.2} %), {:.1} frames/s (baseline {:.1})",
                now.loss * 100.0,
                base.loss * 100.0,
                now.frame_rate,
                base.frame_rate
            );
            assert!(
                now.loss <= base.loss.max(0.0) + 0.01,
                "{what}: {name} lost {:.2} % (baseline {:.2} %)",
                now.loss * 100.0,
                base.loss * 100.0
            );
            assert!(
                now.frame_rate >= 0.9 * base.frame_rate,
                "{what}: {name} got {:.1} frames/s (baseline {:.1})",
                now.frame_rate,
                base.frame_rate
            );
        }
    }
}

/// Two honest participants in a call in `room`: alice, bob, and the SSRCs each one's camera
/// reaches the other under (minted by the focus), once each gets the other's video.
pub async fn call_of_two(room: &str) -> (Joined, Joined, u32, u32) {
    let mut alice = join_and_accept(room, "alice", |_| {}).await;
    let bob = join_and_accept(room, "bob", |_| {}).await;
    let (_, add) = alice.xmpp.next_jingle(Action::SourceAdd).await;
    let bob_camera = camera_of(&add, "bob");
    let alice_camera = camera_of(&bob.initiate, "alice");
    eventually("alice and bob get each other's video", || {
        received(&alice.media, bob_camera) > 60 && received(&bob.media, alice_camera) > 60
    })
    .await;
    (alice, bob, alice_camera, bob_camera)
}

impl<'a> Watched<'a> {
    /// What alice and bob get of each other: cameras and audio.
    pub fn call_of_two(
        alice: &'a Joined,
        bob: &'a Joined,
        alice_camera: u32,
        bob_camera: u32,
    ) -> Watched<'a> {
        Watched {
            streams: vec![
                ("bob's camera at alice".into(), &alice.media, bob_camera),
                ("alice's camera at bob".into(), &bob.media, alice_camera),
                (
                    "bob's audio at alice".into(),
                    &alice.media,
                    bob.config.audio_ssrc,
                ),
                (
                    "alice's audio at bob".into(),
                    &bob.media,
                    alice.config.audio_ssrc,
                ),
            ],
        }
    }

    /// The baseline window: little loss, video at more than 10 frames a second (30 are sent;
    /// a machine busy with other work delays the senders' tasks).
    pub async fn baseline(&self) -> Vec<Quality> {
        let baseline = self.window().await;
        for (quality, (name, _, _)) in baseline.iter().zip(&self.streams) {
            eprintln!(
                "baseline: {name}: loss {:.2} %, {:.1} frames/s",
                quality.loss * 100.0,
                quality.frame_rate
            );
            assert!(quality.loss < 0.05, "baseline: {name}: {quality:?}");
        }
        assert!(baseline[0].frame_rate > 10.0, "baseline: {baseline:?}");
        assert!(baseline[1].frame_rate > 10.0, "baseline: {baseline:?}");
        baseline
    }
}

/// Set in an [`Attacker`]'s process; its value is the JSON the test gave it.
const ATTACKER: &str = "TUTTI_ATTACKER";
/// What starts the lines an attacker says to its test on its stdout.
const ATTACKER_SAYS: &str = "attacker says: ";

/// The attacker of a hostile test, in a process of its own: this test binary again, running
/// the same test (which, seeing [`attacker_arguments`], plays the attacker), at a lower
/// priority (`nice -n 10`). Alice's and bob's media are sent and received in the test's
/// process; an attacker on a thread of it took their CPU on a 2-core machine (the media flood
/// cost bob's camera 1.1 % loss, the nested stanzas' writer cost it 14 % of its frame rate),
/// while a real attacker's CPU is its own. They talk in lines: the test's on the attacker's
/// stdin, the attacker's after [`ATTACKER_SAYS`] on its stdout.
pub struct Attacker {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    said: std::sync::mpsc::Receiver<String>,
}

impl Attacker {
    /// Starts the attacker of `test_name` with `arguments`.
    pub fn start(test_name: &str, arguments: &serde_json::Value) -> Attacker {
        let exe = std::env::current_exe().expect("test executable path");
        let mut child = Command::new("nice")
            .args(["-n", "10"])
            .arg(exe)
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(ATTACKER, arguments.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the attacker's process");
        let stdin = child.stdin.take().expect("the attacker's stdin");
        let stdout = child.stdout.take().expect("the attacker's stdout");
        let (says, said) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // Anywhere in the line: the test harness starts its first without a newline.
                match line.split_once(ATTACKER_SAYS) {
                    Some((_, line)) => {
                        if says.send(line.to_owned()).is_err() {
                            break;
                        }
                    }
                    None => eprintln!("[attacker] {line}"),
                }
            }
        });
        Attacker {
            child,
            stdin: Some(stdin),
            said,
        }
    }

    /// Tells the attacker `line`.
    pub fn tell(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("the attacker's stdin");
        writeln!(stdin, "{line}").expect("telling the attacker");
        stdin.flush().expect("telling the attacker");
    }

    /// The attacker's next line (within 5 minutes).
    pub async fn hear(&mut self) -> String {
        tokio::task::block_in_place(|| self.said.recv_timeout(Duration::from_secs(300)))
            .expect("the attacker said nothing (it failed: see its output)")
    }

    /// Waits for the attacker to finish; it must succeed.
    pub async fn finish(mut self) {
        drop(self.stdin.take());
        let status = tokio::task::block_in_place(|| self.child.wait()).expect("the attacker");
        assert!(status.success(), "the attacker failed: {status}");
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In an [`Attacker`]'s process: the arguments its test gave it.
pub fn attacker_arguments() -> Option<serde_json::Value> {
    let arguments = std::env::var(ATTACKER).ok()?;
    Some(serde_json::from_str(&arguments).expect("the attacker's arguments"))
}

/// In an [`Attacker`]'s process: says `line` to the test.
pub fn attacker_says(line: &str) {
    println!("{ATTACKER_SAYS}{line}");
}

/// In an [`Attacker`]'s process: the test's next line.
pub fn attacker_hears() -> String {
    let mut line = String::new();
    tokio::task::block_in_place(|| std::io::stdin().read_line(&mut line)).expect("the test's line");
    line.trim_end().to_owned()
}

/// A client connection written and read as bytes, logged in (SASL PLAIN, which the test's
/// Prosody allows on loopback) and bound: for what the typed client cannot send in reasonable
/// time, such as stanzas nested 30,000 levels deep (tokio-xmpp's writer takes minutes for one
/// in a debug build).
pub struct RawXmppClient {
    stream: tokio::net::TcpStream,
    /// Received and not taken yet.
    received: Vec<u8>,
}

impl RawXmppClient {
    pub async fn connect(user: &str) -> RawXmppClient {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", C2S_PORT))
            .await
            .expect("connecting to Prosody");
        let mut client = RawXmppClient {
            stream,
            received: Vec::new(),
        };
        client.open().await;
        let token = base64(format!("\0{user}\0{USER_PASSWORD}").as_bytes());
        client
            .send(
                format!(
                    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
                )
                .as_bytes(),
            )
            .await;
        client.read_until("<success").await;
        client.open().await;
        client
            .send(b"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
            .await;
        client.read_until("</iq>").await;
        client
    }

    /// Opens a stream and reads its features.
    async fn open(&mut self) {
        self.send(
            format!(
                "<?xml version='1.0'?><stream:stream to='{DOMAIN}' xmlns='jabber:client' \
                 xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
            )
            .as_bytes(),
        )
        .await;
        self.read_until("</stream:features>").await;
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(bytes).await.expect("sending");
    }

    /// What arrives up to and including `needle` (within [`TIMEOUT`] × 3).
    pub async fn read_until(&mut self, needle: &str) -> String {
        use tokio::io::AsyncReadExt;
        let deadline = Instant::now() + TIMEOUT * 3;
        loop {
            if let Some(at) = self
                .received
                .windows(needle.len())
                .position(|window| window == needle.as_bytes())
            {
                let taken: Vec<u8> = self.received.drain(..at + needle.len()).collect();
                return String::from_utf8_lossy(&taken).into_owned();
            }
            let mut buffer = [0u8; 4096];
            let left = deadline.saturating_duration_since(Instant::now());
            let n = tokio::time::timeout(left, self.stream.read(&mut buffer))
                .await
                .unwrap_or_else(|_| panic!("{needle:?} did not arrive"))
                .expect("reading");
            assert!(n > 0, "the server closed the connection before {needle:?}");
            self.received.extend_from_slice(&buffer[..n]);
        }
    }
}

/// Standard base64, with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
