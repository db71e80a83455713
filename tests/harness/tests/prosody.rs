//! The configuration for real: Prosody starts with it (and again after a stop), registers
//! accounts, and offers STARTTLS exactly when asked to.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tutti_test_harness::netns::{inside_own_netns, rerun_in_own_netns};
use tutti_test_harness::prosody::{ensure_installed, Config, Prosody};

/// The stream features Prosody offers an unauthenticated client on `port`.
fn stream_features(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(
            b"<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' \
              xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
        )
        .unwrap();
    let mut received = String::new();
    let mut buffer = [0; 4096];
    while !received.contains("</stream:features>") {
        let n = stream
            .read(&mut buffer)
            .expect("reading the stream features");
        assert!(n > 0, "the stream ended: {received}");
        received.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    received
}

fn run_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tutti-harness-{name}-{}", std::process::id()))
}

#[test]
fn prosody_runs_the_configuration() {
    if !inside_own_netns() {
        ensure_installed().expect("installing prosody");
    }
    if rerun_in_own_netns("prosody_runs_the_configuration") {
        return;
    }
    let mut plain = Prosody::configure(Config::new(run_dir("plain"))).unwrap();
    plain.register("focus", "secret").unwrap();
    let account = plain
        .config()
        .dir
        .join("prosody-data/localhost/accounts/focus.dat");
    assert!(account.exists(), "no {}", account.display());
    plain.start().unwrap();
    let features = stream_features(5222);
    assert!(features.contains("PLAIN"), "{features}");
    assert!(!features.contains("xmpp-tls"), "{features}");
    plain.stop();
    plain.start().expect("starting again");
    assert!(plain.pid().is_some());
    let dir = plain.config().dir.clone();
    drop(plain);
    assert!(!dir.exists(), "{} was left", dir.display());

    let config = Config {
        starttls: true,
        open_rooms: false,
        c2s_port: 15222,
        ..Config::new(run_dir("tls"))
    };
    let mut tls = Prosody::configure(config).unwrap();
    assert!(tls.test_ca().exists());
    tls.start().unwrap();
    let features = stream_features(15222);
    assert!(
        features.contains("urn:ietf:params:xml:ns:xmpp-tls"),
        "{features}"
    );
}
