//! TLS towards clients (our certificate) and towards upstreams (per-resource verification).

use std::fs;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::config::GatewayConfig;
use crate::error::GatewayError;

const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// Builds the server-side TLS configuration: the configured certificate, or a self-signed one that is
/// created once in the data directory so clients see the same certificate across restarts.
pub fn server_config(config: &GatewayConfig) -> Result<Arc<ServerConfig>, GatewayError> {
    let (cert_path, key_path) = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => ensure_self_signed(&config.data_dir)?,
        _ => {
            return Err(GatewayError::Tls(
                "tls_cert and tls_key must be given together".into(),
            ))
        }
    };
    server_config_from_files(&cert_path, &key_path)
}

/// The server-side TLS configuration of a PEM certificate chain and private key; the HTTP API's
/// listener uses it too.
pub fn server_config_from_files(
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<ServerConfig>, GatewayError> {
    let certs = read_certs(cert_path)?;
    let key = read_key(key_path)?;
    let server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| GatewayError::Tls(format!("{}: {e}", cert_path.display())))?;
    Ok(Arc::new(server))
}

fn ensure_self_signed(
    data_dir: &Path,
) -> Result<(std::path::PathBuf, std::path::PathBuf), GatewayError> {
    let dir = data_dir.join("tls");
    let cert_path = dir.join("gateway.crt");
    let key_path = dir.join("gateway.key");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    fs::create_dir_all(&dir)
        .map_err(|e| GatewayError::io(format!("create {}", dir.display()), e))?;
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .map_err(|e| GatewayError::Tls(format!("generate self-signed certificate: {e}")))?;
    write_private(&key_path, made.key_pair.serialize_pem().as_bytes())?;
    fs::write(&cert_path, made.cert.pem())
        .map_err(|e| GatewayError::io(format!("write {}", cert_path.display()), e))?;
    tracing::info!(cert = %cert_path.display(), "made a self-signed TLS certificate");
    Ok((cert_path, key_path))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), GatewayError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| GatewayError::io(format!("write {}", path.display()), e))?;
    file.write_all(bytes)
        .map_err(|e| GatewayError::io(format!("write {}", path.display()), e))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, GatewayError> {
    let file = fs::File::open(path)
        .map_err(|e| GatewayError::io(format!("open {}", path.display()), e))?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut BufReader::new(file)).collect();
    let certs = certs.map_err(|e| GatewayError::io(format!("read {}", path.display()), e))?;
    if certs.is_empty() {
        return Err(GatewayError::Tls(format!(
            "{}: no certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, GatewayError> {
    let file = fs::File::open(path)
        .map_err(|e| GatewayError::io(format!("open {}", path.display()), e))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .map_err(|e| GatewayError::io(format!("read {}", path.display()), e))?
        .ok_or_else(|| GatewayError::Tls(format!("{}: no private key found", path.display())))
}

/// Client-side TLS for an upstream. `verify` follows libpq: `require`/`prefer` encrypt without checking the
/// certificate, `verify-full` checks it against the system CA bundle and the host name.
pub fn upstream_config(verify: bool) -> Result<Arc<ClientConfig>, GatewayError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Tls(e.to_string()))?;
    let config = if verify {
        let mut roots = RootCertStore::empty();
        for cert in read_certs(Path::new(SYSTEM_CA_BUNDLE))? {
            // One unparsable CA in the system bundle must not stop the others from being trusted.
            let _ = roots.add(cert);
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider())))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// Accepts any certificate: libpq's `sslmode=require` semantics (encryption without authentication).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
