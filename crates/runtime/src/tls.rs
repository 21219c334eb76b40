//! TLS for the gRPC server (optionally mutual) and the checks of the PEM files
//! that TLS settings name, NATS's included.
//!
//! Every file is read and parsed at start-up, so a missing, unreadable or wrong
//! file stops the service with its path in the message instead of failing each
//! handshake later (or, for NATS, retrying a connection forever).
//!
//! rustls runs on `ring` everywhere (tonic's `tls-ring`, async-nats' default,
//! sqlx's `tls-rustls-ring-webpki`): with one provider compiled in, rustls picks
//! it by itself and no process-wide default has to be installed.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::TlsConfig;

/// How long a client may take over its TLS handshake before the connection is
/// dropped (so idle half-open connections cannot pile up handshakes).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// One of a pair of settings is given without the other.
    #[error("{given} is set but {missing} is not: set both, or neither")]
    Incomplete {
        /// The setting that is given.
        given: &'static str,
        /// The one that is missing.
        missing: &'static str,
    },
    /// A file could not be read.
    #[error("{setting}: cannot read {path}: {source}")]
    Read {
        /// The setting naming the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no usable PEM of the expected kind.
    #[error("{setting}: {path}: {reason}")]
    Invalid {
        /// The setting naming the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The files are each valid but do not work together (say, a key that is not
    /// the certificate's).
    #[error("{cert} and {key} cannot serve TLS: {reason}")]
    Unusable {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls says.
        reason: String,
    },
}

/// The server's TLS settings, read and checked; `None` when TLS is off (no
/// certificate configured: plaintext, as before).
pub fn server_tls(config: &TlsConfig) -> Result<Option<ServerTlsConfig>, TlsError> {
    let Some((cert, key)) = pair(
        (&config.cert_file, "FRONTLINE_TLS_CERT_FILE"),
        (&config.key_file, "FRONTLINE_TLS_KEY_FILE"),
    )?
    else {
        if let Some(ca) = non_empty(&config.client_ca_file) {
            return Err(TlsError::Invalid {
                setting: "FRONTLINE_TLS_CLIENT_CA_FILE",
                path: ca.to_path_buf(),
                reason: "client certificates need TLS: set FRONTLINE_TLS_CERT_FILE and \
                         FRONTLINE_TLS_KEY_FILE too"
                    .into(),
            });
        }
        return Ok(None);
    };
    let cert_pem = read_certificates("FRONTLINE_TLS_CERT_FILE", cert)?;
    let key_pem = read_private_key("FRONTLINE_TLS_KEY_FILE", key)?;
    let mut tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert_pem, key_pem))
        .timeout(HANDSHAKE_TIMEOUT);
    if let Some(ca) = non_empty(&config.client_ca_file) {
        let ca_pem = read_certificates("FRONTLINE_TLS_CLIENT_CA_FILE", ca)?;
        // Required, not optional: with a client CA configured, a client without a
        // certificate signed by it is refused in the handshake.
        tls = tls
            .client_ca_root(Certificate::from_pem(ca_pem))
            .client_auth_optional(false);
    }
    // Builds rustls' server configuration once, so a key that is not the
    // certificate's is refused now rather than on the first connection.
    tonic::transport::Server::builder()
        .tls_config(tls.clone())
        .map_err(|e| TlsError::Unusable {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason: error_chain(&e),
        })?;
    Ok(Some(tls))
}

/// Both settings of a pair, or neither; one alone is refused.
pub(crate) fn pair<'a>(
    (a, a_name): (&'a Option<PathBuf>, &'static str),
    (b, b_name): (&'a Option<PathBuf>, &'static str),
) -> Result<Option<(&'a Path, &'a Path)>, TlsError> {
    match (non_empty(a), non_empty(b)) {
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(TlsError::Incomplete {
            given: a_name,
            missing: b_name,
        }),
        (None, Some(_)) => Err(TlsError::Incomplete {
            given: b_name,
            missing: a_name,
        }),
    }
}

/// The path, unless unset or empty (an empty environment variable means unset).
pub(crate) fn non_empty(path: &Option<PathBuf>) -> Option<&Path> {
    path.as_deref().filter(|p| !p.as_os_str().is_empty())
}

/// The PEM text of `path`, checked to hold at least one certificate.
pub(crate) fn read_certificates(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let pem = read(setting, path)?;
    let invalid = |reason: String| TlsError::Invalid {
        setting,
        path: path.to_path_buf(),
        reason,
    };
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("invalid PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(invalid(
            "no certificate (no `BEGIN CERTIFICATE` section)".into(),
        ));
    }
    Ok(pem)
}

/// The PEM text of `path`, checked to hold a private key (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn read_private_key(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let pem = read(setting, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Invalid {
        setting,
        path: path.to_path_buf(),
        reason: match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                "no private key (no `BEGIN PRIVATE KEY` section)".into()
            }
            e => format!("invalid PEM: {e}"),
        },
    })?;
    Ok(pem)
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        setting,
        path: path.to_path_buf(),
        source,
    })
}

/// An error with its sources, as one line (tonic's own message alone says little).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(cert: Option<&Path>, key: Option<&Path>, ca: Option<&Path>) -> TlsConfig {
        TlsConfig {
            cert_file: cert.map(Path::to_path_buf),
            key_file: key.map(Path::to_path_buf),
            client_ca_file: ca.map(Path::to_path_buf),
        }
    }

    #[test]
    fn no_certificate_means_plaintext() {
        assert!(server_tls(&TlsConfig::default()).unwrap().is_none());
        let empty = config(Some(Path::new("")), Some(Path::new("")), None);
        assert!(server_tls(&empty).unwrap().is_none());
    }

    #[test]
    fn one_of_the_pair_alone_is_refused() {
        let cert_only = config(Some(Path::new("/x/cert.pem")), None, None);
        let message = server_tls(&cert_only).unwrap_err().to_string();
        assert!(
            message.contains("FRONTLINE_TLS_CERT_FILE is set but FRONTLINE_TLS_KEY_FILE is not"),
            "{message}"
        );
        let key_only = config(None, Some(Path::new("/x/key.pem")), None);
        let message = server_tls(&key_only).unwrap_err().to_string();
        assert!(
            message.contains("FRONTLINE_TLS_KEY_FILE is set but FRONTLINE_TLS_CERT_FILE is not"),
            "{message}"
        );
        let ca_only = config(None, None, Some(Path::new("/x/ca.pem")));
        let message = server_tls(&ca_only).unwrap_err().to_string();
        assert!(
            message.contains("FRONTLINE_TLS_CLIENT_CA_FILE"),
            "{message}"
        );
    }

    #[test]
    fn unreadable_and_invalid_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();

        let message = server_tls(&config(Some(&missing), Some(&garbage), None))
            .unwrap_err()
            .to_string();
        assert!(message.contains("cannot read"), "{message}");
        assert!(message.contains(&*missing.to_string_lossy()), "{message}");

        let message = server_tls(&config(Some(&garbage), Some(&garbage), None))
            .unwrap_err()
            .to_string();
        assert!(message.contains("no certificate"), "{message}");
        assert!(message.contains(&*garbage.to_string_lossy()), "{message}");
    }
}
