//! From a notification to a subject, two bodies and the inline images they reference.

use esim_courier_core::{CompletedOrder, Content, Customer, Locale};
use serde::Serialize;

use crate::branding::{Branding, LOGO_CID};
use crate::locale;
use crate::qr::qr_png;
use crate::templates::{Rendered, Templates};
use crate::view::{ActivationView, OperatorView, QR_CID};
use crate::RenderError;

/// A PNG sent as a `multipart/related` part with a Content-ID.
#[derive(Clone)]
pub(crate) struct InlineImage {
    pub(crate) cid: &'static str,
    pub(crate) png: Vec<u8>,
}

/// A rendered message before it is put into MIME.
pub(crate) struct Composed {
    pub(crate) template: String,
    pub(crate) locale: String,
    pub(crate) parts: Rendered,
    /// Only the images the HTML references.
    pub(crate) images: Vec<InlineImage>,
}

/// Templates plus branding.
#[derive(Debug)]
pub(crate) struct Renderer {
    templates: Templates,
    branding: Branding,
    default_locale: String,
}

impl Renderer {
    pub(crate) fn new(templates: Templates, branding: Branding, default_locale: String) -> Self {
        Self {
            templates,
            branding,
            default_locale,
        }
    }

    pub(crate) fn templates(&self) -> &Templates {
        &self.templates
    }

    /// The locale folder of `template` for a customer who asked for `requested`.
    pub(crate) fn locale_for(
        &self,
        template: &str,
        requested: Option<&Locale>,
    ) -> Result<String, RenderError> {
        let missing = || RenderError::MissingTemplate {
            template: template.to_owned(),
            locale: self.default_locale.clone(),
        };
        let available = self.templates.locales(template).ok_or_else(missing)?;
        let preferences = requested.map(Locale::preferences).unwrap_or_default();
        locale::resolve(&preferences, available, &self.default_locale)
            .map(str::to_owned)
            .ok_or_else(missing)
    }

    /// The activation email of `order` for `customer`, in `locale` (an existing folder).
    pub(crate) fn activation(
        &self,
        template: &str,
        locale: &str,
        order: &CompletedOrder,
        customer: &Customer,
    ) -> Result<Composed, RenderError> {
        let view = ActivationView::new(self.branding.view(), locale, order, customer);
        let parts = self.render(template, locale, &view)?;
        let qr = InlineImage {
            cid: QR_CID,
            png: qr_png(&order.activation_code.qr_text())?,
        };
        Ok(self.compose(template, locale, parts, Some(qr)))
    }

    /// An operator email about `content`, in `locale` (an existing folder).
    pub(crate) fn operator(
        &self,
        template: &str,
        locale: &str,
        content: &Content,
    ) -> Result<Composed, RenderError> {
        let view = OperatorView::new(self.branding.view(), locale, content);
        let parts = self.render(template, locale, &view)?;
        Ok(self.compose(template, locale, parts, None))
    }

    fn render(
        &self,
        template: &str,
        locale: &str,
        view: &impl Serialize,
    ) -> Result<Rendered, RenderError> {
        let context = serde_json::to_value(view)
            .map_err(|e| RenderError::Message(format!("template context: {e}")))?;
        self.templates.render(template, locale, &context)
    }

    fn compose(
        &self,
        template: &str,
        locale: &str,
        parts: Rendered,
        qr: Option<InlineImage>,
    ) -> Composed {
        let logo = self.branding.logo.as_ref().map(|png| InlineImage {
            cid: LOGO_CID,
            png: png.clone(),
        });
        // An image the HTML does not show would appear as a stray attachment.
        let images = qr
            .into_iter()
            .chain(logo)
            .filter(|i| parts.html.contains(&format!("cid:{}", i.cid)))
            .collect();
        Composed {
            template: template.to_owned(),
            locale: locale.to_owned(),
            parts,
            images,
        }
    }
}
