//! HTTPS served directly with rustls (ring provider), from PEM files.

use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsSection;

/// A rustls server configuration from `[server.tls]`.
pub fn server_config(tls: &TlsSection) -> anyhow::Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .with_context(|| format!("server.tls.cert: cannot read {}", tls.cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!(
                "server.tls.cert: {} is not a PEM certificate chain",
                tls.cert.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!(
            "server.tls.cert: {} holds no certificate",
            tls.cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).with_context(|| {
        format!(
            "server.tls.key: {} holds no usable PEM private key",
            tls.key.display()
        )
    })?;
    // The provider is named explicitly: more than one may be compiled in.
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("server.tls: the certificate and key do not match")
}
