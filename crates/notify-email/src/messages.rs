//! Every sentence of every email, from Project Fluent files: `<template>/<locale>.ftl`.
//!
//! The layouts (handlebars) exist once per template; they ask for a sentence with the `t`
//! helper (`{{t "greeting-named" name=customer_name}}`), and Fluent resolves it in the
//! email's locale, with its variables, plurals and word order. A translator edits one `.ftl`
//! file and never touches markup.
//!
//! - Variables are escaped for HTML before Fluent sees them; the message text itself is
//!   trusted like a template, and may mark emphasis with `<strong>…</strong>` and isolate a
//!   left-to-right term in right-to-left text with `<bdi>…</bdi>` (`SM-DP+`, whose `+` would
//!   otherwise jump to the other end); the plain-text part drops both.
//! - A variable may also be a link made by the `mailto` helper, shown as a link in HTML and as
//!   the bare address in text.
//! - Bidirectional isolation marks are off: right-to-left layouts set `dir` on the elements
//!   that hold left-to-right codes instead, which every mail client understands.
//! - Any Fluent error (an unknown message, a missing variable) fails the render: no email
//!   goes out with a hole in it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderErrorReason,
    ScopedJson,
};
use serde_json::{json, Value};
use unic_langid::LanguageIdentifier;

/// The messages of one template in one locale.
struct Bundle {
    bundle: FluentBundle<FluentResource>,
    ids: BTreeSet<String>,
}

/// Every template's messages, by template then locale.
#[derive(Default)]
pub(crate) struct Messages {
    bundles: BTreeMap<String, BTreeMap<String, Bundle>>,
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let locales: BTreeMap<&str, Vec<&str>> = self
            .bundles
            .iter()
            .map(|(t, l)| (t.as_str(), l.keys().map(String::as_str).collect()))
            .collect();
        f.debug_struct("Messages")
            .field("locales", &locales)
            .finish()
    }
}

impl Messages {
    /// Adds the `.ftl` source of `template` in `locale`; a message already there (the
    /// built-in one) is replaced, so an override file may hold only the sentences it changes.
    /// `origin` names the file in errors.
    pub(crate) fn add(
        &mut self,
        template: &str,
        locale: &str,
        source: String,
        origin: &str,
    ) -> Result<(), String> {
        let resource = FluentResource::try_new(source).map_err(|(_, errors)| {
            let first = errors
                .first()
                .map(|e| format!("{:?} at byte {}", e.kind, e.pos.start))
                .unwrap_or_default();
            format!("{origin} is not valid Fluent: {first}")
        })?;
        let ids: Vec<String> = resource
            .entries()
            .filter_map(|e| match e {
                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                _ => None,
            })
            .collect();
        let entry = self
            .bundles
            .entry(template.to_owned())
            .or_default()
            .entry(locale.to_owned());
        let slot = match entry {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let langid: LanguageIdentifier = locale
                    .parse()
                    .map_err(|e| format!("{origin}: {locale:?} is not a language tag: {e}"))?;
                let mut bundle = FluentBundle::new_concurrent(vec![langid]);
                bundle.set_use_isolating(false);
                v.insert(Bundle {
                    bundle,
                    ids: BTreeSet::new(),
                })
            }
        };
        slot.bundle.add_resource_overriding(resource);
        slot.ids.extend(ids);
        Ok(())
    }

    /// The locales of `template`.
    pub(crate) fn locales(&self, template: &str) -> Vec<String> {
        self.bundles
            .get(template)
            .map(|l| l.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The templates that have messages.
    pub(crate) fn templates(&self) -> impl Iterator<Item = &str> {
        self.bundles.keys().map(String::as_str)
    }

    /// The message ids `en` has and `locale` lacks, for `template`: `en` is the reference
    /// every translation follows.
    pub(crate) fn missing(&self, template: &str, locale: &str) -> Vec<String> {
        let Some(locales) = self.bundles.get(template) else {
            return Vec::new();
        };
        let (Some(en), Some(this)) = (locales.get("en"), locales.get(locale)) else {
            return Vec::new();
        };
        en.ids.difference(&this.ids).cloned().collect()
    }

    /// Message `id` of `template` in `locale` with `args`.
    pub(crate) fn format(
        &self,
        template: &str,
        locale: &str,
        id: &str,
        args: &FluentArgs<'_>,
    ) -> Result<String, String> {
        let bundle = self
            .bundles
            .get(template)
            .and_then(|l| l.get(locale))
            .ok_or_else(|| format!("no messages for {template} in {locale}"))?;
        let pattern = bundle
            .bundle
            .get_message(id)
            .and_then(|m| m.value())
            .ok_or_else(|| format!("{template}/{locale}.ftl has no message {id:?}"))?;
        let mut errors = Vec::new();
        let text = bundle
            .bundle
            .format_pattern(pattern, Some(args), &mut errors);
        if let Some(e) = errors.first() {
            return Err(format!("{template}/{locale}.ftl, message {id:?}: {e}"));
        }
        Ok(text.into_owned())
    }
}

/// Whether the helpers write into HTML or into plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Html,
    Text,
}

/// `{{t "id" name=value ...}}`: the message in the email's locale (`locale` and `template`
/// at the context's root). With `attribute` (the `ta` helper), the whole message is escaped,
/// markup dropped, for an HTML attribute: `alt="{{ta "qr-alt"}}"`.
pub(crate) struct Translate {
    pub(crate) messages: Arc<Messages>,
    pub(crate) mode: Mode,
    pub(crate) escape: fn(&str) -> String,
    pub(crate) attribute: bool,
}

impl HelperDef for Translate {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let id = h
            .param(0)
            .and_then(|p| p.value().as_str())
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("t", 0))?;
        let root = ctx.data();
        let (Some(template), Some(locale)) = (root["template"].as_str(), root["locale"].as_str())
        else {
            return Err(
                RenderErrorReason::Other("the context has no template or locale".into()).into(),
            );
        };
        let mut args = FluentArgs::new();
        for (name, value) in h.hash() {
            let value = match value.value() {
                Value::String(s) => FluentValue::from(match self.mode {
                    Mode::Html => (self.escape)(s),
                    Mode::Text => s.clone(),
                }),
                Value::Number(n) => n
                    .as_i64()
                    .map(FluentValue::from)
                    .or_else(|| n.as_f64().map(FluentValue::from))
                    .unwrap_or(FluentValue::None),
                Value::Object(link) => {
                    let key = if self.mode == Mode::Html {
                        "html"
                    } else {
                        "text"
                    };
                    let Some(shown) = link.get(key).and_then(Value::as_str) else {
                        return Err(RenderErrorReason::Other(format!(
                            "message {id:?}: variable {name} is an object, not a link made by mailto"
                        ))
                        .into());
                    };
                    FluentValue::from(shown.to_owned())
                }
                other => {
                    return Err(RenderErrorReason::Other(format!(
                        "message {id:?}: variable {name} is {other}, not text or a number"
                    ))
                    .into())
                }
            };
            args.set(name.to_string(), value);
        }
        let text = self
            .messages
            .format(template, locale, id, &args)
            .map_err(RenderErrorReason::Other)?;
        match (self.mode, self.attribute) {
            (Mode::Html, false) => out.write(&text)?,
            (Mode::Html, true) => out.write(&(self.escape)(&plain(&text)))?,
            (Mode::Text, _) => out.write(&plain(&text))?,
        }
        Ok(())
    }
}

/// The plain-text form of a message: without its `<strong>` and `<bdi>` markup.
fn plain(text: &str) -> String {
    ["<strong>", "</strong>", "<bdi>", "</bdi>"]
        .iter()
        .fold(text.to_owned(), |t, tag| t.replace(tag, ""))
}

/// `(mailto address colour)`: a link for [`Translate`]'s variables, `<a href="mailto:…">` in
/// the given `#rrggbb` colour in HTML (dark mode recolours it by its class).
pub(crate) struct Mailto {
    pub(crate) escape: fn(&str) -> String,
}

impl HelperDef for Mailto {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, handlebars::RenderError> {
        let address = h
            .param(0)
            .and_then(|p| p.value().as_str())
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("mailto", 0))?;
        let colour = h
            .param(1)
            .and_then(|p| p.value().as_str())
            .map(|c| format!(r#" style="color:{};""#, (self.escape)(c)))
            .unwrap_or_default();
        let shown = (self.escape)(address);
        let html =
            format!(r#"<a class="link" href="mailto:{shown}" dir="ltr"{colour}>{shown}</a>"#);
        Ok(ScopedJson::Derived(json!({"html": html, "text": address})))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages() -> Messages {
        let mut m = Messages::default();
        m.add(
            "t",
            "en",
            "hi = Hi { $name }\norders = { $n ->\n [one] one order\n *[other] { $n } orders\n}\n"
                .into(),
            "t/en.ftl",
        )
        .expect("parses");
        m.add("t", "ja", "hi = { $name } 様\n".into(), "t/ja.ftl")
            .expect("parses");
        m
    }

    #[test]
    fn messages_take_variables_and_plurals_in_their_locale() {
        let m = messages();
        let mut args = FluentArgs::new();
        args.set("name", "Ana");
        assert_eq!(m.format("t", "en", "hi", &args).as_deref(), Ok("Hi Ana"));
        assert_eq!(m.format("t", "ja", "hi", &args).as_deref(), Ok("Ana 様"));
        for (n, want) in [(1, "one order"), (3, "3 orders")] {
            let mut args = FluentArgs::new();
            args.set("n", n);
            assert_eq!(m.format("t", "en", "orders", &args).as_deref(), Ok(want));
        }
        assert_eq!(m.missing("t", "ja"), ["orders".to_owned()]);
    }

    #[test]
    fn an_unknown_message_or_a_missing_variable_is_an_error_not_a_hole() {
        let m = messages();
        let e = m
            .format("t", "en", "nope", &FluentArgs::new())
            .expect_err("unknown");
        assert!(e.contains("no message \"nope\""), "{e}");
        let e = m
            .format("t", "en", "hi", &FluentArgs::new())
            .expect_err("no $name");
        assert!(e.contains("hi"), "{e}");
    }

    #[test]
    fn an_override_replaces_one_message_and_keeps_the_others() {
        let mut m = messages();
        m.add(
            "t",
            "en",
            "hi = Hey { $name }!\n".into(),
            "override/t/en.ftl",
        )
        .expect("parses");
        let mut args = FluentArgs::new();
        args.set("name", "Ana");
        args.set("n", 1);
        assert_eq!(m.format("t", "en", "hi", &args).as_deref(), Ok("Hey Ana!"));
        assert_eq!(
            m.format("t", "en", "orders", &args).as_deref(),
            Ok("one order")
        );
        let e = m
            .add("t", "en", "broken = { $\n".into(), "override/t/en.ftl")
            .expect_err("invalid");
        assert!(e.contains("override/t/en.ftl is not valid Fluent"), "{e}");
    }
}
