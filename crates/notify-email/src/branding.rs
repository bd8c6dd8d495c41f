//! The reseller's branding: name, support address, accent colour and an optional inline logo.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::addresses::{mailbox, Addresses};
use crate::{ConfigError, EmailConfig};

/// The Content-ID of the logo, referenced as `cid:logo@esim-courier` by the layout.
pub(crate) const LOGO_CID: &str = "logo@esim-courier";
/// Large logos bloat every message; Gmail clips past ~102 KB of HTML and mail filters frown
/// on heavy automated mail.
const MAX_LOGO_BYTES: usize = 100 * 1024;

/// Validated branding.
#[derive(Clone)]
pub(crate) struct Branding {
    pub(crate) name: String,
    pub(crate) support_email: String,
    pub(crate) accent_color: String,
    /// PNG bytes of the logo, if configured.
    pub(crate) logo: Option<Vec<u8>>,
}

impl fmt::Debug for Branding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Branding")
            .field("name", &self.name)
            .field("support_email", &self.support_email)
            .field("accent_color", &self.accent_color)
            .field("logo_bytes", &self.logo.as_ref().map(Vec::len))
            .finish()
    }
}

/// What templates see as `brand`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BrandView<'a> {
    name: &'a str,
    support_email: &'a str,
    accent_color: &'a str,
    /// `null` without a logo, so templates can `{{#if brand.logo_cid}}`.
    logo_cid: Option<&'static str>,
}

impl Branding {
    pub(crate) fn from_config(
        config: &EmailConfig,
        addresses: &Addresses,
    ) -> Result<Self, ConfigError> {
        let name = match config.brand_name.as_deref().map(str::trim) {
            Some("") => return Err(ConfigError::new("brand_name", "is empty")),
            Some(name) => name.to_owned(),
            None => addresses
                .from
                .name
                .clone()
                .unwrap_or_else(|| addresses.from.email.domain().to_owned()),
        };
        let support_email = match config.support_email.as_deref() {
            // Parsed as a mailbox so a typo is caught here, shown as the bare address.
            Some(raw) => mailbox("support_email", raw)?.email.to_string(),
            None => addresses
                .reply_to
                .as_ref()
                .unwrap_or(&addresses.from)
                .email
                .to_string(),
        };
        let accent_color = config.accent_color.trim().to_ascii_lowercase();
        if !is_hex_color(&accent_color) {
            return Err(ConfigError::new(
                "accent_color",
                format!(
                    "{:?} is not a colour such as \"#0b63ce\"",
                    config.accent_color
                ),
            ));
        }
        let logo = config.logo.as_deref().map(read_logo).transpose()?;
        Ok(Self {
            name,
            support_email,
            accent_color,
            logo,
        })
    }

    /// The `brand` object of a template context.
    pub(crate) fn view(&self) -> BrandView<'_> {
        BrandView {
            name: &self.name,
            support_email: &self.support_email,
            accent_color: &self.accent_color,
            logo_cid: self.logo.as_ref().map(|_| LOGO_CID),
        }
    }
}

fn is_hex_color(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn read_logo(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::new("logo", format!("cannot read {}: {e}", path.display())))?;
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(ConfigError::new(
            "logo",
            format!("{} is not a PNG file", path.display()),
        ));
    }
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(ConfigError::new(
            "logo",
            format!(
                "{} is {} KiB; keep it under {} KiB",
                path.display(),
                bytes.len() / 1024,
                MAX_LOGO_BYTES / 1024
            ),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> EmailConfig {
        toml::from_str(&format!(
            r#"
            audience = "customer"
            template = "activation"
            from = "Wander eSIM <esim@wander.example>"
            transport = {{ type = "file", dir = "d" }}
            {extra}
            "#
        ))
        .expect("valid section")
    }

    fn branding(extra: &str) -> Result<Branding, ConfigError> {
        let config = config(extra);
        let addresses = Addresses::from_config(&config).expect("addresses");
        Branding::from_config(&config, &addresses)
    }

    #[test]
    fn defaults_come_from_the_sender() {
        let b = branding("").expect("valid");
        assert_eq!(b.name, "Wander eSIM");
        assert_eq!(b.support_email, "esim@wander.example");
        assert_eq!(b.accent_color, "#0b63ce");
        assert!(b.logo.is_none());
        let b = branding(r#"reply_to = "help@wander.example""#).expect("valid");
        assert_eq!(b.support_email, "help@wander.example");
    }

    #[test]
    fn colours_and_logos_are_validated() {
        assert_eq!(
            branding(r##"accent_color = "#FF8800""##)
                .expect("valid")
                .accent_color,
            "#ff8800"
        );
        for bad in ["red", "#fff", "#12345g", "#1234567", "\"#000000\" onload"] {
            let error = branding(&format!("accent_color = {bad:?}")).expect_err(bad);
            assert_eq!(error.key(), "accent_color");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let not_png = dir.path().join("logo.png");
        std::fs::write(&not_png, b"GIF89a").expect("write");
        let error = branding(&format!("logo = {:?}", not_png.display().to_string()))
            .expect_err("not a PNG");
        assert_eq!(error.key(), "logo");
        let png = dir.path().join("ok.png");
        std::fs::write(&png, crate::qr::qr_png("logo").expect("png")).expect("write");
        let b = branding(&format!("logo = {:?}", png.display().to_string())).expect("valid logo");
        assert!(b.logo.is_some());
        assert_eq!(b.view().logo_cid, Some(LOGO_CID));
    }
}
