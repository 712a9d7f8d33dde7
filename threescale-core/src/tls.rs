//! [`TlsTrust`]: whom the backend client and the admin portal loader trust,
//! and how they prove who they are (mutual TLS).
//!
//! By default the bundled web PKI roots are trusted, as a browser would. For a
//! 3scale on premises behind a private certificate authority add its
//! certificates ([`TlsTrust::ca_file`]) or the operating system's roots
//! ([`TlsTrust::native_roots`]); for a backend that requires client
//! certificates give one with its key ([`TlsTrust::client_identity_files`]). Or
//! pass a ready [`reqwest::Client`] ([`TlsTrust::client`]) built however the
//! deployment needs.
//!
//! Files are read and checked when the configuration is built, so a missing or
//! broken file is a [`crate::ConfigError`] at start-up, never a surprise at the
//! first request. A server certificate the client does not trust is
//! [`crate::BackendError::Tls`]: a configuration error, not an outage, so no
//! failure policy ever admits requests because of it.
//!
//! ```
//! use threescale_core::{Config, TlsTrust};
//! # let dir = std::env::temp_dir();
//! let trust = TlsTrust::default().native_roots(true);
//! let config = Config::builder()
//!     .service_token("token", "42")
//!     .backend_url("https://backend.3scale.internal")
//!     .tls(trust)
//!     .build()
//!     .unwrap();
//! assert!(config.tls.uses_native_roots());
//! let err = Config::builder()
//!     .service_token("token", "42")
//!     .tls(TlsTrust::default().ca_file(dir.join("no-such-ca.pem")))
//!     .build()
//!     .unwrap_err();
//! assert_eq!(err.field, "tls.ca_file");
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, pem::PemObject};

/// PEM text given inline or a file to read it from.
#[derive(Clone)]
enum Pem {
    File(PathBuf),
    Inline(Arc<[u8]>),
}

impl Pem {
    fn load(&self) -> Result<std::borrow::Cow<'_, [u8]>, String> {
        match self {
            Pem::Inline(pem) => Ok(std::borrow::Cow::Borrowed(pem)),
            Pem::File(path) => std::fs::read(path)
                .map(std::borrow::Cow::Owned)
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
        }
    }

    fn describe(&self) -> String {
        match self {
            Pem::File(path) => path.display().to_string(),
            Pem::Inline(_) => "<PEM>".to_string(),
        }
    }
}

/// TLS trust and client identity for the backend client and the portal loader.
/// `Debug` names files but never shows a key.
#[derive(Clone)]
#[non_exhaustive]
pub struct TlsTrust {
    ca: Vec<Pem>,
    native_roots: bool,
    webpki_roots: bool,
    identity: Option<(Pem, Pem)>,
    client: Option<reqwest::Client>,
}

impl Default for TlsTrust {
    fn default() -> Self {
        TlsTrust {
            ca: Vec::new(),
            native_roots: false,
            webpki_roots: true,
            identity: None,
            client: None,
        }
    }
}

impl std::fmt::Debug for TlsTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTrust")
            .field("ca", &self.ca.iter().map(Pem::describe).collect::<Vec<_>>())
            .field("native_roots", &self.native_roots)
            .field("webpki_roots", &self.webpki_roots)
            .field(
                "client_cert",
                &self.identity.as_ref().map(|(cert, _)| cert.describe()),
            )
            .field("client_key", &self.identity.as_ref().map(|_| "***"))
            .field("ready_client", &self.client.is_some())
            .finish()
    }
}

/// A TLS setting that cannot be used: which one, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
#[non_exhaustive]
pub struct TlsError {
    /// `tls.ca_file`, `tls.client_cert`, `tls.client_key` or `tls.client`.
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

fn tls_error(field: &'static str, reason: impl Into<String>) -> TlsError {
    TlsError {
        field,
        reason: reason.into(),
    }
}

impl TlsTrust {
    /// Also trusts the certificate authorities in this PEM file (one or more
    /// certificates). Repeatable.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca.push(Pem::File(path.into()));
        self
    }

    /// Also trusts the certificate authorities in this PEM text.
    pub fn ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.ca.push(Pem::Inline(pem.as_ref().into()));
        self
    }

    /// Also trusts the operating system's roots (default off).
    pub fn native_roots(mut self, on: bool) -> Self {
        self.native_roots = on;
        self
    }

    /// Trusts the bundled web PKI roots (default on). Turn it off to trust only
    /// the given authorities (and the system's, if asked).
    pub fn webpki_roots(mut self, on: bool) -> Self {
        self.webpki_roots = on;
        self
    }

    /// Presents this client certificate (chain) and private key, both PEM
    /// files, to servers that ask for one (mutual TLS).
    pub fn client_identity_files(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.identity = Some((Pem::File(cert.into()), Pem::File(key.into())));
        self
    }

    /// Like [`TlsTrust::client_identity_files`], from PEM text.
    pub fn client_identity_pem(mut self, cert: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Self {
        self.identity = Some((
            Pem::Inline(cert.as_ref().into()),
            Pem::Inline(key.as_ref().into()),
        ));
        self
    }

    /// Uses this client as it is for backend calls and portal loads, instead
    /// of building one. It must not follow redirects (a redirect would carry
    /// the credentials to another URL: build it with
    /// `redirect(reqwest::redirect::Policy::none())`); the request timeout is
    /// still applied to every call, its connect timeout and pool are its own.
    /// Cannot be combined with the other settings.
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Whether the operating system's roots are trusted.
    pub fn uses_native_roots(&self) -> bool {
        self.native_roots
    }

    /// Whether nothing differs from the default.
    pub fn is_default(&self) -> bool {
        self.ca.is_empty()
            && !self.native_roots
            && self.webpki_roots
            && self.identity.is_none()
            && self.client.is_none()
    }

    /// Reads and checks every file and PEM text: each CA file holds at least
    /// one certificate, the client certificate and key form an identity.
    ///
    /// ```
    /// use threescale_core::TlsTrust;
    /// let err = TlsTrust::default().ca_pem("not PEM").check().unwrap_err();
    /// assert_eq!(err.field, "tls.ca_file");
    /// ```
    pub fn check(&self) -> Result<(), TlsError> {
        if self.client.is_some() {
            let other = TlsTrust {
                client: None,
                ..self.clone()
            };
            if !other.is_default() {
                return Err(tls_error(
                    "tls.client",
                    "a ready client carries its own trust; give it alone, without CA files, \
                     roots or a client identity",
                ));
            }
            return Ok(());
        }
        self.roots()?;
        self.identity()?;
        Ok(())
    }

    /// The extra root certificates, each checked.
    fn roots(&self) -> Result<Vec<reqwest::Certificate>, TlsError> {
        let mut roots = Vec::new();
        for source in &self.ca {
            let what = source.describe();
            let pem = source.load().map_err(|e| tls_error("tls.ca_file", e))?;
            let ders = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_error("tls.ca_file", format!("{what}: {e}")))?;
            if ders.is_empty() {
                return Err(tls_error(
                    "tls.ca_file",
                    format!("{what}: no certificate in the PEM"),
                ));
            }
            let mut store = rustls::RootCertStore::empty();
            for der in ders {
                store
                    .add(der.clone())
                    .map_err(|e| tls_error("tls.ca_file", format!("{what}: {e}")))?;
                roots.push(
                    reqwest::Certificate::from_der(&der)
                        .map_err(|e| tls_error("tls.ca_file", format!("{what}: {e}")))?,
                );
            }
        }
        Ok(roots)
    }

    /// The client identity, if any.
    fn identity(&self) -> Result<Option<reqwest::Identity>, TlsError> {
        let Some((cert, key)) = &self.identity else {
            return Ok(None);
        };
        let cert_pem = cert.load().map_err(|e| tls_error("tls.client_cert", e))?;
        let key_pem = key.load().map_err(|e| tls_error("tls.client_key", e))?;
        let certs = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls_error("tls.client_cert", format!("{}: {e}", cert.describe())))?;
        if certs.is_empty() {
            return Err(tls_error(
                "tls.client_cert",
                format!("{}: no certificate in the PEM", cert.describe()),
            ));
        }
        // Never quote the key file's content in an error.
        if rustls::pki_types::PrivateKeyDer::from_pem_slice(&key_pem).is_err() {
            return Err(tls_error(
                "tls.client_key",
                format!("{}: no private key in the PEM", key.describe()),
            ));
        }
        let mut both = Vec::with_capacity(cert_pem.len() + key_pem.len() + 1);
        both.extend_from_slice(&cert_pem);
        both.push(b'\n');
        both.extend_from_slice(&key_pem);
        reqwest::Identity::from_pem(&both).map(Some).map_err(|_| {
            tls_error(
                "tls.client_key",
                "the certificate and key do not form an identity",
            )
        })
    }

    /// The HTTP client: the ready one, or `builder` with these settings.
    pub(crate) fn http_client(
        &self,
        builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::Client, TlsError> {
        if let Some(client) = &self.client {
            self.check()?;
            return Ok(client.clone());
        }
        let mut builder = builder
            .use_rustls_tls()
            .tls_built_in_webpki_certs(self.webpki_roots)
            .tls_built_in_native_certs(self.native_roots);
        for root in self.roots()? {
            builder = builder.add_root_certificate(root);
        }
        if let Some(identity) = self.identity()? {
            builder = builder.identity(identity);
        }
        builder.build().map_err(|e| {
            tls_error(
                "tls",
                format!("cannot build the HTTP client: {}", e.without_url()),
            )
        })
    }

    /// Reads the `THREESCALE_TLS_*` variables through `var`: `_CA_FILE`,
    /// `_NATIVE_ROOTS` and `_WEBPKI_ROOTS` (`true`/`false`), `_CLIENT_CERT` and
    /// `_CLIENT_KEY` (files, both or neither). `None` when none is set.
    pub(crate) fn from_vars(
        var: &impl Fn(&str) -> Option<String>,
    ) -> Result<Option<TlsTrust>, crate::ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let flag = |name: &str| -> Result<Option<bool>, crate::ConfigError> {
            match get(name) {
                None => Ok(None),
                Some(v) => parse_flag(&v)
                    .map(Some)
                    .ok_or_else(|| crate::ConfigError::new("env", name, "expected true or false")),
            }
        };
        let ca = get("THREESCALE_TLS_CA_FILE");
        let native = flag("THREESCALE_TLS_NATIVE_ROOTS")?;
        let webpki = flag("THREESCALE_TLS_WEBPKI_ROOTS")?;
        let cert = get("THREESCALE_TLS_CLIENT_CERT");
        let key = get("THREESCALE_TLS_CLIENT_KEY");
        if ca.is_none() && native.is_none() && webpki.is_none() && cert.is_none() && key.is_none() {
            return Ok(None);
        }
        let mut trust = TlsTrust::default();
        if let Some(ca) = ca {
            trust = trust.ca_file(ca);
        }
        if let Some(on) = native {
            trust = trust.native_roots(on);
        }
        if let Some(on) = webpki {
            trust = trust.webpki_roots(on);
        }
        match (cert, key) {
            (Some(cert), Some(key)) => trust = trust.client_identity_files(cert, key),
            (None, None) => {}
            (Some(_), None) => {
                return Err(crate::ConfigError::new(
                    "env",
                    "THREESCALE_TLS_CLIENT_KEY",
                    "required with THREESCALE_TLS_CLIENT_CERT",
                ));
            }
            (None, Some(_)) => {
                return Err(crate::ConfigError::new(
                    "env",
                    "THREESCALE_TLS_CLIENT_CERT",
                    "required with THREESCALE_TLS_CLIENT_KEY",
                ));
            }
        }
        Ok(Some(trust))
    }

    /// The environment variable that sets a field, for errors.
    pub(crate) fn env_name(field: &str) -> &'static str {
        match field {
            "tls.ca_file" => "THREESCALE_TLS_CA_FILE",
            "tls.client_cert" => "THREESCALE_TLS_CLIENT_CERT",
            "tls.client_key" => "THREESCALE_TLS_CLIENT_KEY",
            _ => "THREESCALE_TLS_*",
        }
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
pub(crate) fn parse_flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Whether a failed request failed because the TLS handshake refused a
/// certificate (the server's is not trusted, or the server refused ours).
pub(crate) fn is_trust_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = current {
        // `io::Error::source` skips the error it wraps: unwrap those by hand
        // (the TLS connector's error comes as an I/O error in an I/O error).
        let mut inner = err;
        loop {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return trust_error(tls);
            }
            match inner
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
            {
                Some(wrapped) => inner = wrapped,
                None => break,
            }
        }
        current = err.source();
    }
    false
}

fn trust_error(error: &rustls::Error) -> bool {
    use rustls::AlertDescription as Alert;
    match error {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => true,
        rustls::Error::AlertReceived(alert) => matches!(
            alert,
            Alert::BadCertificate
                | Alert::UnsupportedCertificate
                | Alert::CertificateRevoked
                | Alert::CertificateExpired
                | Alert::CertificateUnknown
                | Alert::UnknownCA
                | Alert::AccessDenied
                | Alert::CertificateRequired
                | Alert::HandshakeFailure
        ),
        _ => false,
    }
}

/// An error and its causes, joined by `: `, each said once.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    use std::fmt::Write as _;
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            let _ = write!(message, ": {text}");
        }
        source = cause.source();
    }
    message
}

/// What to set after a trust failure.
pub(crate) const TRUST_HINT: &str = "trust the server's CA (tls.ca_file, THREESCALE_TLS_CA_FILE) \
    or present the client certificate it requires (tls.client_cert/client_key, \
    THREESCALE_TLS_CLIENT_CERT/_KEY)";
