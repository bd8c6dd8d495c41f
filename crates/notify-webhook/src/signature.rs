use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::ConfigError;

/// Signs payloads per Standard Webhooks: `v1,` + base64(HMAC-SHA256(key, "{id}.{ts}.{body}")).
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl Signer {
    /// The signer for a `whsec_<base64>` secret.
    pub fn from_secret(secret: &SecretString) -> Result<Self, ConfigError> {
        let encoded = secret.expose_secret().trim();
        let encoded = encoded.strip_prefix("whsec_").ok_or(ConfigError::Secret)?;
        let key = STANDARD.decode(encoded).map_err(|_| ConfigError::Secret)?;
        if key.is_empty() {
            return Err(ConfigError::Secret);
        }
        Ok(Self { key })
    }

    /// The `webhook-signature` header value.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        // HMAC takes a key of any length, so `new_from_slice` cannot fail here.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            unreachable!("HMAC accepts keys of any length")
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector published with the Standard Webhooks reference libraries.
    #[test]
    fn signs_the_specifications_test_vector() {
        let signer = Signer::from_secret(&SecretString::from(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ))
        .expect("valid");
        let sig = signer.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn refuses_secrets_without_the_prefix() {
        assert!(
            Signer::from_secret(&SecretString::from("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).is_err()
        );
        assert!(Signer::from_secret(&SecretString::from("whsec_!!!")).is_err());
        let s = Signer::from_secret(&SecretString::from("whsec_c2VjcmV0")).expect("valid");
        assert!(!format!("{s:?}").contains("c2VjcmV0"));
    }
}
