//! Optional webhook hardening: a source-address allowlist (with trusted proxies for
//! `X-Forwarded-For`), a rate limit per source address, and HMAC signatures for providers
//! that sign their requests.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix_web::HttpRequest;
use base64::Engine;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hmac::{Hmac, KeyInit, Mac};
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};

/// What the webhook checks before it reads a body, all optional.
#[derive(Debug, Clone, Default)]
pub struct Hardening {
    /// Only these networks may post webhooks; empty allows any source.
    pub allow_sources: Vec<IpNet>,
    /// Proxies whose `X-Forwarded-For` is believed (e.g. the reverse proxy in front).
    pub trusted_proxies: Vec<IpNet>,
    /// Requests per second per source address, and the burst allowed above it.
    pub rate_limit: Option<RateLimit>,
    /// A signature the provider puts in a header.
    pub signature: Option<SignatureCheck>,
}

/// A rate limit per source address.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: NonZeroU32,
    /// Requests allowed at once above the sustained rate.
    pub burst: NonZeroU32,
}

/// HMAC algorithms a provider may sign with; configured as `sha256` (the default), `sha512`
/// or `sha1`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureAlgorithm {
    /// HMAC-SHA256.
    #[default]
    #[serde(alias = "SHA256")]
    Sha256,
    /// HMAC-SHA512.
    #[serde(alias = "SHA512")]
    Sha512,
    /// HMAC-SHA1 (legacy providers).
    #[serde(alias = "SHA1")]
    Sha1,
}

/// How the signature is written in the header; configured as `hex` (the default) or
/// `base64`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    /// Lower- or upper-case hexadecimal.
    #[default]
    #[serde(alias = "HEX")]
    Hex,
    /// Standard base64.
    #[serde(alias = "BASE64")]
    Base64,
}

/// Verifies `header` = encode(HMAC(secret, body)), optionally after a prefix such as
/// `sha256=`.
#[derive(Clone)]
pub struct SignatureCheck {
    /// The header carrying the signature.
    pub header: String,
    /// The HMAC algorithm.
    pub algorithm: SignatureAlgorithm,
    /// Hex or base64.
    pub encoding: SignatureEncoding,
    /// A prefix before the signature in the header value, e.g. `sha256=`.
    pub prefix: String,
    /// The shared secret.
    pub secret: SecretString,
}

impl std::fmt::Debug for SignatureCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureCheck")
            .field("header", &self.header)
            .field("algorithm", &self.algorithm)
            .field("encoding", &self.encoding)
            .field("secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl SignatureCheck {
    /// Whether the request's header holds the body's signature (compared in constant time).
    pub fn verify(&self, req: &HttpRequest, body: &[u8]) -> bool {
        let Some(value) = req
            .headers()
            .get(self.header.as_str())
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some(given) = value.trim().strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        let given = match self.encoding {
            SignatureEncoding::Hex => hex::decode(given.trim()).ok(),
            SignatureEncoding::Base64 => base64::engine::general_purpose::STANDARD
                .decode(given.trim())
                .ok(),
        };
        let Some(given) = given else { return false };
        let key = self.secret.expose_secret().as_bytes();
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
        match self.algorithm {
            SignatureAlgorithm::Sha256 => {
                Hmac::<sha2::Sha256>::new_from_slice(key).is_ok_and(|mut m| {
                    m.update(body);
                    m.verify_slice(&given).is_ok()
                })
            }
            SignatureAlgorithm::Sha512 => {
                Hmac::<sha2::Sha512>::new_from_slice(key).is_ok_and(|mut m| {
                    m.update(body);
                    m.verify_slice(&given).is_ok()
                })
            }
            SignatureAlgorithm::Sha1 => {
                Hmac::<sha1::Sha1>::new_from_slice(key).is_ok_and(|mut m| {
                    m.update(body);
                    m.verify_slice(&given).is_ok()
                })
            }
        }
    }
}

/// The runtime side of [`Hardening`]: the rate limiter's state.
pub(crate) struct Guard {
    config: Hardening,
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    checks: AtomicU64,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why a request is refused before its body is read.
pub(crate) enum Refusal {
    /// The source is not in the allowlist.
    Forbidden(IpAddr),
    /// Over the rate limit.
    RateLimited(IpAddr),
}

impl Guard {
    pub(crate) fn new(config: Hardening) -> Arc<Self> {
        let limiter = config
            .rate_limit
            .map(|r| RateLimiter::keyed(Quota::per_second(r.per_second).allow_burst(r.burst)));
        Arc::new(Self {
            config,
            limiter,
            checks: AtomicU64::new(0),
        })
    }

    pub(crate) fn signature(&self) -> Option<&SignatureCheck> {
        self.config.signature.as_ref()
    }

    /// The client's address (see [`client_address`]).
    pub(crate) fn source(&self, req: &HttpRequest) -> Option<IpAddr> {
        client_address(&self.config.trusted_proxies, req)
    }

    /// Applies the allowlist and the rate limit.
    pub(crate) fn admit(&self, source: Option<IpAddr>) -> Result<(), Refusal> {
        let Some(ip) = source else { return Ok(()) };
        let allow = &self.config.allow_sources;
        if !allow.is_empty() && !allow.iter().any(|n| n.contains(&ip)) {
            return Err(Refusal::Forbidden(ip));
        }
        if let Some(limiter) = &self.limiter {
            // Forget idle addresses now and then so the table stays small.
            if self.checks.fetch_add(1, Ordering::Relaxed) % 10_000 == 9_999 {
                limiter.retain_recent();
            }
            if limiter.check_key(&ip).is_err() {
                return Err(Refusal::RateLimited(ip));
            }
        }
        Ok(())
    }
}

/// The client's address: the peer, or, when the peer is one of `trusted_proxies`, the last
/// address in `X-Forwarded-For` that is not itself a trusted proxy. The webhook's guard and
/// the console's login limit resolve clients this one way.
pub fn client_address(trusted_proxies: &[IpNet], req: &HttpRequest) -> Option<IpAddr> {
    let trusted = |ip: IpAddr| trusted_proxies.iter().any(|n| n.contains(&ip));
    let peer = req.peer_addr()?.ip();
    if !trusted(peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted(*ip))
            .unwrap_or(peer),
    )
}
