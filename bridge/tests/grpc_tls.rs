//! The gRPC control API over mutual TLS, with the real bridge binary: only clients whose
//! certificate chains to the configured CA get an answer; a client without a certificate, with
//! one from another CA, with an expired one, or speaking plaintext is refused in the handshake,
//! with the reason on both sides (the TLS alert the client receives, the bridge's log and its
//! refusal counter). Plaintext on a non-loopback address, or a missing file, stops the start.
//!
//! In TLS 1.3 a client's handshake is complete before the server has checked the client's
//! certificate: the verdict comes as an alert with the first read. A gRPC client (tonic, hyper)
//! may then fail its call with that alert or just with "connection closed", whichever it reads
//! first; so the alert is checked with a plain rustls client.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use support::*;
use tokio::io::AsyncReadExt;
use tokio_rustls::TlsConnector;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tutti_proto::bridge_v1 as pb;
use tutti_proto::bridge_v1::bridge_client::BridgeClient;
use tutti_test_harness::certs::TestPki;

fn tls_env(pki: &TestPki) -> Vec<(&'static str, String)> {
    vec![
        (
            "TUTTI_BRIDGE_GRPC_TLS_CA",
            pki.cert("ca").display().to_string(),
        ),
        (
            "TUTTI_BRIDGE_GRPC_TLS_CERT",
            pki.cert("bridge").display().to_string(),
        ),
        (
            "TUTTI_BRIDGE_GRPC_TLS_KEY",
            pki.key("bridge").display().to_string(),
        ),
    ]
}

/// A client that trusts `pki`'s CA, presenting the certificate `identity` (if any).
fn tls_client(pki: &TestPki, port: u16, identity: Option<&str>) -> Endpoint {
    client_trusting(pki, "ca", port, identity)
}

/// A client that trusts `pki`'s CA certificate `ca`, presenting `identity` (if any).
fn client_trusting(pki: &TestPki, ca: &str, port: u16, identity: Option<&str>) -> Endpoint {
    let read = |path: &Path| std::fs::read(path).expect("reading a test certificate");
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&pki.cert(ca))))
        .domain_name("localhost");
    if let Some(name) = identity {
        tls = tls.identity(Identity::from_pem(
            read(&pki.cert(name)),
            read(&pki.key(name)),
        ));
    }
    Endpoint::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .expect("client TLS configuration")
}

/// Connects and creates a conference: Ok, or the whole chain of the error as text.
async fn create_conference(endpoint: Endpoint) -> Result<(), String> {
    fn chain(error: &dyn std::error::Error) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
    static CONFERENCES: AtomicU32 = AtomicU32::new(0);
    let channel: Channel = endpoint.connect().await.map_err(|e| chain(&e))?;
    BridgeClient::new(channel)
        .create_conference(pb::CreateConferenceRequest {
            conference_id: format!("tls-{}", CONFERENCES.fetch_add(1, Ordering::Relaxed)),
            name: "tls@conference.example".into(),
        })
        .await
        .map(|_| ())
        .map_err(|status| format!("{}: {}", status.message(), chain(&status)))
}

/// What a TLS client presenting `identity` (if any) hears from the bridge right after its
/// handshake: the bridge's alert, as rustls words it.
async fn alert_for(pki: &TestPki, port: u16, identity: Option<&str>) -> String {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.cert("ca")).unwrap())
        .unwrap();
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(name) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(pki.cert(name)).unwrap()],
                PrivateKeyDer::from_pem_file(pki.key(name)).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let server = ServerName::try_from("localhost").unwrap();
    let mut tls = match TlsConnector::from(Arc::new(config))
        .connect(server, tcp)
        .await
    {
        Ok(tls) => tls,
        Err(error) => return error.to_string(),
    };
    let mut buf = [0; 64];
    match tls.read(&mut buf).await {
        Err(error) => error.to_string(),
        Ok(n) => panic!("{identity:?}: the bridge sent {n} bytes, not an alert"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_clients_of_the_configured_ca_are_answered() {
    if rerun_in_own_netns("only_clients_of_the_configured_ca_are_answered") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tutti-grpc-tls-{}", std::process::id()));
    let pki = TestPki::write(&dir).expect("writing the test certificates");
    let env = tls_env(&pki);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let bridge = BridgeProcess::start(&env);
    let port = bridge.bound.grpc.port();

    create_conference(tls_client(&pki, port, Some("focus")))
        .await
        .expect("a client with a certificate of the CA is answered");

    // Each refusal: the gRPC call fails, the client receives an alert naming what the bridge
    // objected to, and the bridge counts it under the reason it logs (the gRPC client may
    // connect more than once for its call: at least once).
    let refusals =
        |reason: &str| format!("tutti_bridge_grpc_tls_refusals_total{{reason=\"{reason}\"}}");
    for (identity, alert, reason) in [
        (None, "CertificateRequired", "no_certificate"),
        (Some("other-focus"), "UnknownCA", "unknown_issuer"),
        (Some("expired-focus"), "CertificateExpired", "expired"),
    ] {
        create_conference(tls_client(&pki, port, identity))
            .await
            .expect_err("refused");
        let heard = alert_for(&pki, port, identity).await;
        assert!(
            heard.contains(&format!("received fatal alert: {alert}")),
            "{identity:?}: the client should hear {alert}: {heard}"
        );
        let metric = refusals(reason);
        let metrics = bridge.metrics_when(|m| m.get(&metric) >= 2.0).await;
        assert!(metrics.get(&metric) >= 2.0, "{identity:?}: {metric}");
    }

    let plaintext = Endpoint::from_shared(format!("http://127.0.0.1:{port}")).unwrap();
    create_conference(plaintext).await.expect_err("refused");
    let metric = refusals("not_tls");
    let metrics = bridge.metrics_when(|m| m.get(&metric) >= 1.0).await;
    assert!(metrics.get(&metric) >= 1.0, "a plaintext client is refused");
    // None of them was taken for another.
    for reason in ["bad_certificate", "client_alert", "tls", "timeout", "io"] {
        assert_eq!(metrics.get(&refusals(reason)), 0.0, "{reason}");
    }

    // A client that trusts another CA refuses the bridge itself (the focus's side).
    let error = create_conference(client_trusting(&pki, "other-ca", port, Some("focus")))
        .await
        .expect_err("the bridge's certificate is not trusted");
    assert!(error.contains("UnknownIssuer"), "{error}");

    // Still serving the good client after all of that.
    create_conference(tls_client(&pki, port, Some("focus")))
        .await
        .expect("answered again");
    drop(bridge);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_of_the_script_work() {
    if rerun_in_own_netns("certificates_of_the_script_work") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tutti-grpc-script-{}", std::process::id()));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/certs");
    let status = Command::new(script)
        .arg(&dir)
        .status()
        .expect("running scripts/certs");
    assert!(status.success(), "scripts/certs: {status}");
    // The script's layout is the test PKI's: `<name>.pem` and `<name>-key.pem`.
    let pki = TestPki { dir: dir.clone() };
    let env = tls_env(&pki);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let bridge = BridgeProcess::start(&env);
    let port = bridge.bound.grpc.port();
    create_conference(tls_client(&pki, port, Some("focus")))
        .await
        .expect("the script's focus certificate is accepted");
    create_conference(tls_client(&pki, port, None))
        .await
        .expect_err("no client certificate");
    let heard = alert_for(&pki, port, None).await;
    assert!(heard.contains("CertificateRequired"), "{heard}");
    drop(bridge);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the bridge binary expecting it not to start; returns its stderr.
fn refused_start(env: &[(&str, &str)]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_bridge"))
        .env("TUTTI_BRIDGE_HTTP_ADDRESS", "127.0.0.1:0")
        .env("TUTTI_BRIDGE_MEDIA_ADDRESS", "127.0.0.1:0")
        .envs(env.iter().copied())
        .output()
        .expect("running the bridge binary");
    assert!(!output.status.success(), "the bridge started: {output:?}");
    assert!(output.stdout.is_empty(), "no ready line");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn plaintext_off_loopback_and_bad_files_stop_the_start() {
    // Refused while reading the configuration, before any socket: no namespace needed.
    let stderr = refused_start(&[("TUTTI_BRIDGE_GRPC_ADDRESS", "10.0.0.1:10090")]);
    assert!(
        stderr.contains("gRPC on a non-loopback address needs grpc_tls_"),
        "{stderr}"
    );
    let stderr = refused_start(&[
        ("TUTTI_BRIDGE_GRPC_ADDRESS", "127.0.0.1:0"),
        ("TUTTI_BRIDGE_GRPC_TLS_CA", "/nonexistent/ca.pem"),
        ("TUTTI_BRIDGE_GRPC_TLS_CERT", "/nonexistent/bridge.pem"),
        ("TUTTI_BRIDGE_GRPC_TLS_KEY", "/nonexistent/bridge-key.pem"),
    ]);
    assert!(
        stderr.contains("grpc_tls_ca /nonexistent/ca.pem"),
        "{stderr}"
    );
}
