//! HTTPS for the emulator: a server certificate and key (PEM), and optionally
//! the certificate authorities whose client certificates it requires (mTLS).
//! rustls with the ring provider; no OpenSSL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::errors::EmulatorError;

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The emulator's TLS settings: its certificate chain and key, and for mutual
/// TLS the certificate authorities a client certificate must chain to.
///
/// ```no_run
/// use threescale_emulator::{Emulator, EmulatorConfig, EmulatorTls};
/// # async fn run() -> Result<(), threescale_emulator::EmulatorError> {
/// let tls = EmulatorTls::from_files("server.pem", "server.key")?;
/// let emulator = Emulator::start_tls(EmulatorConfig::default(), tls).await?;
/// assert!(emulator.url().starts_with("https://"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EmulatorTls {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    client_cas: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for EmulatorTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorTls")
            .field("certificates", &self.chain.len())
            .field("key", &"***")
            .field("client_cas", &self.client_cas.len())
            .finish()
    }
}

fn tls_error(reason: impl Into<String>) -> EmulatorError {
    EmulatorError::Tls(reason.into())
}

impl EmulatorTls {
    /// A certificate chain and its private key, both PEM.
    ///
    /// ```
    /// use threescale_emulator::EmulatorTls;
    /// let err = EmulatorTls::from_pem(b"not a certificate", b"nor a key").unwrap_err();
    /// assert!(err.to_string().contains("no certificate"), "{err}");
    /// ```
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, EmulatorError> {
        let chain = certificates(cert_pem, "the server certificate")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| tls_error(format!("the server key: no private key found ({e})")))?;
        Ok(EmulatorTls {
            chain,
            key: Arc::new(key),
            client_cas: Vec::new(),
        })
    }

    /// Like [`EmulatorTls::from_pem`], reading the two files.
    pub fn from_files(
        cert: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> Result<Self, EmulatorError> {
        EmulatorTls::from_pem(&read(cert.as_ref())?, &read(key.as_ref())?)
    }

    /// Requires a client certificate issued by one of these authorities (PEM).
    pub fn require_client_cert(mut self, ca_pem: &[u8]) -> Result<Self, EmulatorError> {
        self.client_cas = certificates(ca_pem, "the client CA")?;
        Ok(self)
    }

    /// Like [`EmulatorTls::require_client_cert`], reading the file.
    pub fn require_client_cert_file(
        self,
        ca: impl AsRef<std::path::Path>,
    ) -> Result<Self, EmulatorError> {
        let pem = read(ca.as_ref())?;
        self.require_client_cert(&pem)
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_cert(&self) -> bool {
        !self.client_cas.is_empty()
    }

    fn server_config(&self) -> Result<rustls::ServerConfig, EmulatorError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(e.to_string()))?;
        let builder = if self.client_cas.is_empty() {
            builder.with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for ca in &self.client_cas {
                roots
                    .add(ca.clone())
                    .map_err(|e| tls_error(format!("the client CA: {e}")))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| tls_error(format!("the client CA: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        };
        let mut config = builder
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| tls_error(format!("the server certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, EmulatorError> {
    std::fs::read(path).map_err(|e| tls_error(format!("cannot read {}: {e}", path.display())))
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, EmulatorError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("{what}: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(format!("{what}: no certificate in the PEM")));
    }
    Ok(certs)
}

/// A listener that hands axum only connections whose TLS handshake succeeded.
/// Handshakes run concurrently; a failed one is logged and dropped.
pub(crate) struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl TlsListener {
    pub(crate) fn new(listener: TcpListener, tls: &EmulatorTls) -> Result<Self, EmulatorError> {
        let local = listener
            .local_addr()
            .map_err(|e| tls_error(format!("listener address: {e}")))?;
        let acceptor = TlsAcceptor::from(Arc::new(tls.server_config()?));
        let (tx, incoming) = mpsc::channel(64);
        let acceptor = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::debug!(%error, "emulator: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(error)) => {
                            tracing::info!(%peer, %error, "emulator: TLS handshake refused");
                        }
                        Err(_) => tracing::info!(%peer, "emulator: TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            incoming,
            local,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Some(connection) = self.incoming.recv().await {
                return connection;
            }
            // The acceptor task ended (it never does unless aborted): wait for shutdown.
            std::future::pending::<()>().await;
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
