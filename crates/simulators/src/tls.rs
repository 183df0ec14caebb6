//! HTTPS for simulators: a private CA made at start-up (rcgen), a server certificate for
//! `127.0.0.1` and `localhost` signed by it, client certificates for mutual TLS (also as
//! passphrase-protected PKCS#12), and an axum [`Listener`] that does the TLS handshake.
//! Clients trust a simulator by loading [`SimCa::ca_pem`] as their `ca_file`.

use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A simulator's certificate authority, its server certificate, and the client certificates it
/// can issue.
pub struct SimCa {
    /// PEM of the CA certificate: what a client trusts.
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivatePkcs8KeyDer<'static>,
    name: String,
}

/// A client certificate and its key, in PEM and DER.
pub struct ClientIdentity {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    /// PKCS#8.
    pub key_der: Vec<u8>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl SimCa {
    /// Makes a new CA and a server certificate for loopback.
    pub fn new(name: &str) -> Result<Self, String> {
        let err = |what: &str, e: &dyn std::fmt::Display| {
            format!("cannot make the {name} simulator's {what}: {e}")
        };
        let ca_key = KeyPair::generate().map_err(|e| err("CA key", &e))?;
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| err("CA", &e))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(
            DnType::CommonName,
            format!("watchfloor {name} simulator CA"),
        );
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| err("CA", &e))?;
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().map_err(|e| err("server key", &e))?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()])
            .map_err(|e| err("server certificate", &e))?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| err("server certificate", &e))?;
        Ok(SimCa {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            issuer,
            server_chain: vec![cert.der().clone(), ca_cert.der().clone()],
            server_key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            name: name.to_string(),
        })
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// The server's certificate chain and its PKCS#8 key, PEM, for a server that is not
    /// written in Rust (a test's SMTP server).
    pub fn server_pem(&self) -> (String, String) {
        let pem = |tag: &str, der: &[u8]| {
            use base64::Engine as _;
            let text = base64::engine::general_purpose::STANDARD.encode(der);
            let lines: Vec<&str> = text
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect();
            format!(
                "-----BEGIN {tag}-----\n{}\n-----END {tag}-----\n",
                lines.join("\n")
            )
        };
        let chain: String = self
            .server_chain
            .iter()
            .map(|c| pem("CERTIFICATE", c))
            .collect();
        (
            chain,
            pem("PRIVATE KEY", self.server_key.secret_pkcs8_der()),
        )
    }

    fn server_config(&self, client_auth: bool) -> Result<Arc<ServerConfig>, String> {
        let err = |e: &dyn std::fmt::Display| {
            format!("cannot configure TLS for the {} simulator: {e}", self.name)
        };
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| err(&e))?;
        let builder = if client_auth {
            let mut roots = RootCertStore::empty();
            roots.add(self.ca_der.clone()).map_err(|e| err(&e))?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| err(&e))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(
                self.server_chain.clone(),
                PrivateKeyDer::Pkcs8(self.server_key.clone_key()),
            )
            .map_err(|e| err(&e))?;
        Ok(Arc::new(config))
    }

    /// Wraps a bound TCP listener so every connection is TLS.
    pub fn listener(&self, tcp: TcpListener) -> Result<TlsListener, String> {
        TlsListener::new(tcp, TlsAcceptor::from(self.server_config(false)?))
    }

    /// Like [`SimCa::listener`], but a client certificate signed by this CA is required:
    /// a handshake without one fails.
    pub fn mutual_listener(&self, tcp: TcpListener) -> Result<TlsListener, String> {
        TlsListener::new(tcp, TlsAcceptor::from(self.server_config(true)?))
    }

    /// Issues a client certificate signed by this CA.
    pub fn client_identity(&self, common_name: &str) -> Result<ClientIdentity, String> {
        let err = |e: &dyn std::fmt::Display| format!("cannot issue a client certificate: {e}");
        let key = KeyPair::generate().map_err(|e| err(&e))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| err(&e))?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer).map_err(|e| err(&e))?;
        Ok(ClientIdentity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        })
    }
}

impl ClientIdentity {
    /// The identity and the CA as a PKCS#12 file in OpenSSL 3's default form (AES-256 with
    /// PBKDF2, SHA-256 MAC), protected by `passphrase`.
    pub fn to_pkcs12(&self, ca_der: &[u8], passphrase: &str) -> Result<Vec<u8>, String> {
        use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
        let err = |e: p12_keystore::error::Error| format!("cannot write the client PKCS#12: {e}");
        let key = PrivateKey::from_der(&self.key_der).map_err(err)?;
        let certs = [
            Certificate::from_der(&self.cert_der).map_err(err)?,
            Certificate::from_der(ca_der).map_err(err)?,
        ];
        let mut store = KeyStore::new();
        store.add_entry(
            "client",
            KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new("client", key, certs)),
        );
        store.writer(passphrase).write().map_err(err)
    }
}

/// A TCP listener that completes the TLS handshake before handing connections to axum. Each
/// handshake runs on its own task, as a real server's do, so that many clients connecting at
/// once are not served one handshake at a time.
pub struct TlsListener {
    addr: std::net::SocketAddr,
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, std::net::SocketAddr)>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> Result<TlsListener, String> {
        let addr = tcp.local_addr().map_err(|e| e.to_string())?;
        let (done, ready) = tokio::sync::mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = tcp.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let (acceptor, done) = (acceptor.clone(), done.clone());
                // A client that fails the handshake (wrong CA, no certificate, plain HTTP)
                // only loses its own connection.
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(5), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => {
                            let _ = done.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            addr,
            ready,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // The port closes with the server.
        self.accepting.abort();
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Some(conn) = self.ready.recv().await {
                return conn;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
