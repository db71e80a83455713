//! The gRPC API's mutual TLS. The bridge does the handshakes itself (rather than leaving them
//! to tonic, which drops a failed one silently): each refused client is logged with its address
//! and the reason, and counted in `tutti_bridge_grpc_tls_refusals_total{reason}`.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

use crate::config::GrpcTls;

/// A client that has not completed its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Refused handshakes by reason: `no_certificate`, `unknown_issuer`, `expired`,
/// `bad_certificate`, `not_tls`, `client_alert` (the client refused the bridge), `tls` (any
/// other TLS error), `timeout`, `io`.
pub type Refusals = Family<[(&'static str, &'static str); 1], Counter>;

/// The server side: TLS 1.3 only, the bridge's certificate, and client certificates required
/// to chain to the configured CA.
pub fn server_config(files: &GrpcTls) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in read_certs(&files.ca, "grpc_tls_ca")? {
        roots.add(ca).with_context(|| {
            format!(
                "grpc_tls_ca {}: not a usable CA certificate",
                files.ca.display()
            )
        })?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .with_context(|| format!("grpc_tls_ca {}", files.ca.display()))?;
    let chain = read_certs(&files.cert, "grpc_tls_cert")?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| anyhow!("grpc_tls_key {}: {e}", files.key.display()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .with_context(|| {
            format!(
                "grpc_tls_cert {} with grpc_tls_key {}",
                files.cert.display(),
                files.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path, key: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("{key} {}: {e}", path.display()))?;
    if certs.is_empty() {
        bail!("{key} {}: no CERTIFICATE in the file", path.display());
    }
    Ok(certs)
}

/// Accepts on `listener` and yields the connections whose handshake succeeded, for tonic's
/// `serve_with_incoming`. The returned task accepts until aborted (or the stream is dropped).
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    refusals: Refusals,
) -> (
    ReceiverStream<io::Result<TlsStream<TcpStream>>>,
    JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(16);
    let acceptor = TlsAcceptor::from(config);
    let task = tokio::spawn(async move {
        while !tx.is_closed() {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "gRPC accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Nagle off, as for plaintext (see `run`).
            if let Err(error) = stream.set_nodelay(true) {
                tracing::warn!(%peer, %error, "gRPC connection: TCP_NODELAY");
            }
            let (acceptor, tx, refusals) = (acceptor.clone(), tx.clone(), refusals.clone());
            tokio::spawn(async move {
                let error = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                        return;
                    }
                    Ok(Err(error)) => error,
                    Err(_) => io::Error::new(io::ErrorKind::TimedOut, "no handshake within 10 s"),
                };
                refuse(peer, &error, &refusals);
            });
        }
    });
    (ReceiverStream::new(rx), task)
}

fn refuse(peer: SocketAddr, error: &io::Error, refusals: &Refusals) {
    let reason = refusal_reason(error);
    refusals.get_or_create(&[("reason", reason)]).inc();
    tracing::warn!(%peer, reason, %error, "gRPC client refused: TLS handshake failed");
}

fn refusal_reason(error: &io::Error) -> &'static str {
    let Some(tls) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return if error.kind() == io::ErrorKind::TimedOut {
            "timeout"
        } else {
            "io"
        };
    };
    match tls {
        rustls::Error::NoCertificatesPresented => "no_certificate",
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => "unknown_issuer",
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "expired",
        rustls::Error::InvalidCertificate(_) => "bad_certificate",
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => "not_tls",
        // The client refused the bridge's certificate.
        rustls::Error::AlertReceived(_) => "client_alert",
        _ => "tls",
    }
}
