//! Encryption at rest of activation codes and customer data, and the keyed hashes (blind
//! index) that let the store look them up without plaintext.
//!
//! Each stored value is an envelope, kept as text so that one format serves every column on
//! both engines: `enc:` and the base64 of
//!
//! ```text
//! version (1 byte, 1) | key id length (1 byte) | key id | nonce (24 bytes) | ciphertext and tag
//! ```
//!
//! sealed with XChaCha20-Poly1305. Its 192-bit nonce is drawn at random for every value, so
//! one key seals any number of values without a nonce counter shared by the replicas. The
//! associated data is the envelope's header, the field (`table.column`) and the row's
//! identity ([`Field::row`]): a value copied into another row, or another column, fails to
//! open.
//!
//! The blind index is HMAC-SHA256 under the index key, which rotation does not change: event
//! fingerprints (duplicate detection) and customer addresses (search, erasure) are stored
//! only as such keyed hashes.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::Aead;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

use crate::StoreError;

/// What every envelope begins with; a stored value without it is plaintext from before
/// encryption (encrypted by the first start after the upgrade).
pub(crate) const PREFIX: &str = "enc:";
const VERSION: u8 = 1;
const NONCE: usize = 24;
const TAG: usize = 16;
/// Key material: 32 bytes.
pub const KEY_BYTES: usize = 32;

/// A column that holds encrypted values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `webhook_receipts.body`: every raw body (it carries the activation code).
    ReceiptBody,
    /// `order_events.lpa`: the usable activation code.
    EventCode,
    /// `orders.customer_email`.
    OrderEmail,
    /// `orders.customer_name`.
    OrderName,
    /// `placements.customer_email`.
    PlacementEmail,
    /// `placements.customer_name`.
    PlacementName,
    /// `delivery_attempts.recipient`: where an activation email went.
    AttemptRecipient,
    /// `outbox_jobs.recipient`: the address of a `resend --to`.
    JobRecipient,
    /// `encryption_keys.key_check`: a fixed text each key sealed when first used (not a
    /// stored datum: not walked by rotation).
    KeyCheck,
}

impl Field {
    /// Every encrypted column.
    pub const ALL: [Field; 8] = [
        Field::ReceiptBody,
        Field::EventCode,
        Field::OrderEmail,
        Field::OrderName,
        Field::PlacementEmail,
        Field::PlacementName,
        Field::AttemptRecipient,
        Field::JobRecipient,
    ];

    /// `(table, column)`.
    pub fn column(self) -> (&'static str, &'static str) {
        match self {
            Field::ReceiptBody => ("webhook_receipts", "body"),
            Field::EventCode => ("order_events", "lpa"),
            Field::OrderEmail => ("orders", "customer_email"),
            Field::OrderName => ("orders", "customer_name"),
            Field::PlacementEmail => ("placements", "customer_email"),
            Field::PlacementName => ("placements", "customer_name"),
            Field::AttemptRecipient => ("delivery_attempts", "recipient"),
            Field::JobRecipient => ("outbox_jobs", "recipient"),
            Field::KeyCheck => ("encryption_keys", "key_check"),
        }
    }

    /// The SQL expression of a row's identity, as bound into its values' associated data:
    /// what names the row for good. A receipt's id and an event's id are assigned by the
    /// insert that stores the value, so those two are named by what the row says instead: a
    /// receipt by its order and arrival millisecond, an event by its order and fingerprint
    /// (unique per order; `keys reindex` re-seals the code with the new one). A job's
    /// recipient is sealed after the job's insert, for its id (its key can change).
    ///
    /// Two rows with one identity could swap values unnoticed: two receipts of one order in
    /// the same millisecond, or two attempts of one job numbered alike after a dead-letter
    /// retry restarted its count. Both hold values of the same order.
    pub(crate) fn row_sql(self) -> &'static str {
        match self {
            Field::ReceiptBody => "COALESCE(order_no, '') || '/' || CAST(received_at AS TEXT)",
            Field::EventCode => "order_no || '/' || fingerprint",
            Field::OrderEmail | Field::OrderName => "order_no",
            Field::PlacementEmail | Field::PlacementName => "reference",
            Field::AttemptRecipient => "CAST(job_id AS TEXT) || '/' || CAST(attempt AS TEXT)",
            Field::JobRecipient => "CAST(id AS TEXT)",
            Field::KeyCheck => "key_id",
        }
    }

    /// The table's key, for paging and for updating one row.
    pub(crate) fn key_sql(self) -> &'static str {
        match self {
            Field::OrderEmail | Field::OrderName => "order_no",
            Field::PlacementEmail | Field::PlacementName => "reference",
            Field::KeyCheck => "key_id",
            _ => "id",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (table, column) = self.column();
        write!(f, "{table}.{column}")
    }
}

/// A receipt's identity ([`Field::row_sql`]).
pub(crate) fn receipt_row(order_no: Option<&str>, received_at: i64) -> String {
    format!("{}/{received_at}", order_no.unwrap_or(""))
}

/// An event's identity ([`Field::row_sql`]).
pub(crate) fn event_row(order_no: &str, fingerprint: &str) -> String {
    format!("{order_no}/{fingerprint}")
}

/// A delivery attempt's identity ([`Field::row_sql`]).
pub(crate) fn attempt_row(job_id: i64, attempt: i64) -> String {
    format!("{job_id}/{attempt}")
}

/// The keys: the data keys by id, the one new values are sealed with, and the index key.
/// Its `Debug` names the key ids only.
pub struct Keyring {
    active: String,
    ciphers: BTreeMap<String, XChaCha20Poly1305>,
    index: SecretBox<[u8; KEY_BYTES]>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("keys", &self.ciphers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A new random 32-byte key, in base64 (what the configuration takes).
pub fn generate_key() -> String {
    STANDARD.encode(random::<KEY_BYTES>())
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The operating system's generator failing is not something to go on without.
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    bytes
}

/// Decodes a base64 key, naming it in the error.
pub fn decode_key(name: &str, base64: &str) -> Result<SecretBox<[u8; KEY_BYTES]>, StoreError> {
    let bytes = STANDARD.decode(base64.trim()).map_err(|_| {
        StoreError::Config(format!(
            "encryption key {name:?} is not base64 (make one with `esim-courier keys generate`)"
        ))
    })?;
    let key: [u8; KEY_BYTES] = bytes.as_slice().try_into().map_err(|_| {
        StoreError::Config(format!(
            "encryption key {name:?} is {} bytes; it must be {KEY_BYTES} (make one with `esim-courier keys generate`)",
            bytes.len()
        ))
    })?;
    Ok(SecretBox::new(Box::new(key)))
}

impl Keyring {
    /// A keyring sealing new values with `active`, which must be one of `keys`. Key ids are
    /// 1 to 32 characters of `A-Z a-z 0-9 _ -`.
    pub fn new(
        active: &str,
        keys: BTreeMap<String, SecretBox<[u8; KEY_BYTES]>>,
        index_key: SecretBox<[u8; KEY_BYTES]>,
    ) -> Result<Self, StoreError> {
        let mut ciphers = BTreeMap::new();
        for (id, key) in keys {
            if id.is_empty()
                || id.len() > 32
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(StoreError::Config(format!(
                    "encryption key id {id:?} must be 1 to 32 letters, digits, '_' or '-'"
                )));
            }
            let cipher = XChaCha20Poly1305::new_from_slice(key.expose_secret()).map_err(|_| {
                StoreError::Config(format!("encryption key {id:?} is not 32 bytes"))
            })?;
            ciphers.insert(id, cipher);
        }
        if !ciphers.contains_key(active) {
            return Err(StoreError::Config(format!(
                "encryption.active_key is {active:?}, but encryption.keys has no key by that id"
            )));
        }
        Ok(Self {
            active: active.to_owned(),
            ciphers,
            index: index_key,
        })
    }

    /// A keyring of fresh random keys (`k1` and an index key), for tests and benchmarks.
    pub fn random() -> Self {
        let key = SecretBox::new(Box::new(random::<KEY_BYTES>()));
        let index = SecretBox::new(Box::new(random::<KEY_BYTES>()));
        Self::new("k1", BTreeMap::from([("k1".to_owned(), key)]), index)
            .expect("a valid generated keyring")
    }

    /// The id new values are sealed with.
    pub fn active(&self) -> &str {
        &self.active
    }

    /// Whether a key id is configured.
    pub fn has(&self, id: &str) -> bool {
        self.ciphers.contains_key(id)
    }

    /// Seals `plaintext` for `field` of `row` with the active key.
    pub(crate) fn seal(&self, field: Field, row: &str, plaintext: &[u8]) -> String {
        let cipher = &self.ciphers[&self.active];
        let mut envelope =
            Vec::with_capacity(2 + self.active.len() + NONCE + plaintext.len() + TAG);
        envelope.push(VERSION);
        envelope.push(self.active.len() as u8);
        envelope.extend_from_slice(self.active.as_bytes());
        let header = envelope.len();
        let nonce = random::<NONCE>();
        envelope.extend_from_slice(&nonce);
        let aad = associated_data(&envelope[..header], field, row);
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                chacha20poly1305::aead::Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals any value a row can hold");
        envelope.extend_from_slice(&sealed);
        let mut text = String::with_capacity(PREFIX.len() + envelope.len().div_ceil(3) * 4);
        text.push_str(PREFIX);
        STANDARD.encode_string(&envelope, &mut text);
        text
    }

    /// Seals a text value.
    pub(crate) fn seal_str(&self, field: Field, row: &str, plaintext: &str) -> String {
        self.seal(field, row, plaintext.as_bytes())
    }

    /// Opens a value of `field` of `row`. An error names the field and the row, never the
    /// value.
    pub(crate) fn open(
        &self,
        field: Field,
        row: &str,
        stored: &str,
    ) -> Result<Vec<u8>, StoreError> {
        let fail = |reason: String| StoreError::Decrypt {
            field,
            row: row.to_owned(),
            reason,
        };
        let envelope = parse(stored).map_err(|e| fail(e.to_owned()))?;
        let cipher = self.ciphers.get(envelope.key_id()).ok_or_else(|| {
            fail(format!(
                "it is sealed with key {:?}, which is not configured",
                envelope.key_id()
            ))
        })?;
        let aad = associated_data(envelope.header(), field, row);
        cipher
            .decrypt(
                &XNonce::from(envelope.nonce()),
                chacha20poly1305::aead::Payload {
                    msg: envelope.sealed(),
                    aad: &aad,
                },
            )
            .map_err(|_| {
                fail("it does not authenticate (altered, copied from another row, or sealed with another key of that id)".into())
            })
    }

    /// Opens a text value.
    pub(crate) fn open_str(
        &self,
        field: Field,
        row: &str,
        stored: &str,
    ) -> Result<String, StoreError> {
        String::from_utf8(self.open(field, row, stored)?).map_err(|_| StoreError::Decrypt {
            field,
            row: row.to_owned(),
            reason: "it opens to something that is not text".into(),
        })
    }

    /// The keyed hash of `value` in the index `domain`, in hex.
    pub(crate) fn index(&self, domain: &str, value: &[u8]) -> String {
        let mut mac = <Hmac<Sha256>>::new_from_slice(self.index.expose_secret())
            .expect("HMAC takes a key of any length");
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        hex::encode(mac.finalize().into_bytes())
    }

    /// The blind index of a customer's address: any case matches.
    pub(crate) fn email_index(&self, address: &str) -> String {
        self.index("email", address.trim().to_lowercase().as_bytes())
    }

    /// The stored fingerprint of an event, from the event's canonical digest: keyed, so that
    /// it reveals nothing about the activation code it covers. Prefixed `h` to tell it from
    /// the unkeyed digests stored before encryption.
    pub(crate) fn fingerprint(&self, digest: &str) -> String {
        format!("h{}", self.index("event", digest.as_bytes()))
    }

    /// A check value of the index key, stored with the data: a start with another index key
    /// (whose hashes would match nothing stored) is refused.
    pub(crate) fn index_check(&self) -> String {
        self.index("check", b"esim-courier blind index")
    }
}

fn associated_data(header: &[u8], field: Field, row: &str) -> Vec<u8> {
    let (table, column) = field.column();
    let mut aad = Vec::with_capacity(header.len() + table.len() + column.len() + row.len() + 2);
    aad.extend_from_slice(header);
    aad.extend_from_slice(table.as_bytes());
    aad.push(b'.');
    aad.extend_from_slice(column.as_bytes());
    aad.push(0);
    aad.extend_from_slice(row.as_bytes());
    aad
}

/// A parsed envelope: its bytes, and where the header and the nonce end.
pub(crate) struct Envelope {
    bytes: Vec<u8>,
    header: usize,
}

impl Envelope {
    /// The id of the key that sealed it.
    pub(crate) fn key_id(&self) -> &str {
        // Checked to be text by `parse`.
        std::str::from_utf8(&self.bytes[2..self.header]).unwrap_or_default()
    }

    fn header(&self) -> &[u8] {
        &self.bytes[..self.header]
    }

    fn nonce(&self) -> [u8; NONCE] {
        let mut nonce = [0u8; NONCE];
        nonce.copy_from_slice(&self.bytes[self.header..self.header + NONCE]);
        nonce
    }

    fn sealed(&self) -> &[u8] {
        &self.bytes[self.header + NONCE..]
    }
}

/// Whether a stored value is an envelope (else it is plaintext from before encryption).
pub(crate) fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// Parses a stored envelope.
pub(crate) fn parse(stored: &str) -> Result<Envelope, &'static str> {
    let body = stored
        .strip_prefix(PREFIX)
        .ok_or("it is not an encrypted value")?;
    let bytes = STANDARD
        .decode(body)
        .map_err(|_| "its envelope is not base64")?;
    match bytes.as_slice() {
        [VERSION, len, rest @ ..] => {
            let header = 2 + usize::from(*len);
            if rest.len() < usize::from(*len) + NONCE + TAG {
                return Err("its envelope is cut short");
            }
            if std::str::from_utf8(&bytes[2..header]).is_err() {
                return Err("its key id is not text");
            }
            Ok(Envelope { bytes, header })
        }
        [version, ..] if *version != VERSION => Err("its envelope has an unknown version"),
        _ => Err("its envelope is cut short"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(active: &str, ids: &[&str]) -> Keyring {
        let keys = ids
            .iter()
            .map(|id| {
                let key = decode_key(id, &generate_key()).expect("a generated key decodes");
                ((*id).to_owned(), key)
            })
            .collect();
        let index = SecretBox::new(Box::new([7u8; KEY_BYTES]));
        Keyring::new(active, keys, index).expect("a valid keyring")
    }

    #[test]
    fn a_value_opens_only_in_its_own_column_and_row() {
        let keys = keyring("k1", &["k1"]);
        let sealed = keys.seal_str(Field::OrderEmail, "ORDER-1", "ana@example.com");
        assert!(sealed.starts_with("enc:"));
        assert!(!sealed.contains("ana@example.com"));
        assert_eq!(
            keys.open_str(Field::OrderEmail, "ORDER-1", &sealed)
                .expect("opens"),
            "ana@example.com"
        );
        for (field, row) in [
            (Field::OrderEmail, "ORDER-2"),
            (Field::OrderName, "ORDER-1"),
            (Field::PlacementEmail, "ORDER-1"),
        ] {
            let error = keys
                .open(field, row, &sealed)
                .expect_err("bound to its row");
            assert!(
                matches!(&error, StoreError::Decrypt { row: r, .. } if r == row),
                "{error}"
            );
        }
        // Two seals of one value differ (a fresh nonce each).
        assert_ne!(
            sealed,
            keys.seal_str(Field::OrderEmail, "ORDER-1", "ana@example.com")
        );
    }

    #[test]
    fn every_altered_byte_is_refused_and_never_shown() {
        let keys = keyring("k1", &["k1"]);
        let sealed = keys.seal(Field::EventCode, "O/h1", b"LPA:1$smdp.example$SECRET");
        let bytes = STANDARD.decode(&sealed[PREFIX.len()..]).expect("base64");
        for i in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[i] ^= 0x01;
            let text = format!("{PREFIX}{}", STANDARD.encode(&altered));
            let error = keys
                .open(Field::EventCode, "O/h1", &text)
                .expect_err("altered");
            assert!(!error.to_string().contains("SECRET"), "{error}");
        }
        for broken in ["", "enc:", "enc:!!", "LPA:1$a$b", "enc:AQ=="] {
            assert!(
                keys.open(Field::EventCode, "O/h1", broken).is_err(),
                "{broken}"
            );
        }
    }

    #[test]
    fn a_value_names_its_key_and_needs_it() {
        let old = keyring("k1", &["k1"]);
        let sealed = old.seal_str(Field::OrderName, "O", "Ana");
        assert_eq!(parse(&sealed).expect("an envelope").key_id(), "k1");
        let new = keyring("k2", &["k2"]);
        let error = new
            .open(Field::OrderName, "O", &sealed)
            .expect_err("k1 is gone");
        assert!(
            error
                .to_string()
                .contains("\"k1\", which is not configured"),
            "{error}"
        );
    }

    #[test]
    fn keys_and_ids_are_checked_and_never_shown() {
        let keys = keyring("k1", &["k1", "k2"]);
        let debug = format!("{keys:?}");
        assert!(debug.contains("k1") && debug.contains("k2"), "{debug}");
        assert!(decode_key("k1", "c2hvcnQ=").is_err(), "too short");
        assert!(decode_key("k1", "not base64!").is_err());
        let index = || SecretBox::new(Box::new([1u8; KEY_BYTES]));
        let key = || decode_key("k", &generate_key()).expect("decodes");
        assert!(Keyring::new("k9", BTreeMap::from([("k1".into(), key())]), index()).is_err());
        assert!(Keyring::new("a b", BTreeMap::from([("a b".into(), key())]), index()).is_err());
    }

    #[test]
    fn the_blind_index_is_keyed_and_ignores_case() {
        let keys = keyring("k1", &["k1"]);
        assert_eq!(
            keys.email_index("Ana@Example.com"),
            keys.email_index("ana@example.com ")
        );
        let other = Keyring::new(
            "k1",
            BTreeMap::from([("k1".into(), decode_key("k1", &generate_key()).expect("key"))]),
            SecretBox::new(Box::new([8u8; KEY_BYTES])),
        )
        .expect("keyring");
        assert_ne!(
            keys.email_index("ana@example.com"),
            other.email_index("ana@example.com")
        );
        assert!(keys.fingerprint("abc").starts_with('h'));
    }
}
