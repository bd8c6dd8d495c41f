//! Loading and compiling the templates: the built-in set (the repository's
//! `crates/notify-email/templates/`, embedded at compile time) overlaid by an optional folder, so a reseller
//! can change wording, add a language or restyle without rebuilding.
//!
//! Layout: `layout.html.hbs` (the HTML chrome every `body.html.hbs` wraps itself in with
//! `{{#> layout}} … {{/layout}}`), then per template one set of markup,
//! `<template>/{subject.hbs,body.html.hbs,body.txt.hbs}`, and one Fluent file of sentences
//! per locale, `<template>/<locale>.ftl` (see `messages.rs`). The markup exists once: a fix
//! to it reaches every language.
//!
//! Both registries run in strict mode, so a misspelt variable is an error rather than a blank
//! in a customer's email. The HTML registry escapes `& < > " '`, enough for text and quoted
//! attributes (every attribute in the templates is quoted), and leaves `=` alone so links
//! read as written. Subjects and text bodies are not escaped.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use esim_courier_core::Locale;
use handlebars::Handlebars;
use serde_json::Value;

use crate::messages::{Mailto, Messages, Mode, Translate};
use crate::palette::PALETTE;
use crate::{ConfigError, RenderError};

/// The subject, HTML body and text body files of one template.
pub(crate) const FILES: [&str; 3] = ["subject.hbs", "body.html.hbs", "body.txt.hbs"];
/// The shared HTML chrome, registered as the partial `layout`.
pub(crate) const LAYOUT: &str = "layout.html.hbs";

macro_rules! builtin_markup {
    ($template:literal) => {
        (
            $template,
            [
                include_str!(concat!("../templates/", $template, "/subject.hbs")),
                include_str!(concat!("../templates/", $template, "/body.html.hbs")),
                include_str!(concat!("../templates/", $template, "/body.txt.hbs")),
            ],
        )
    };
}

/// The activation email's built-in locales and their messages, from one list.
macro_rules! activation_locales {
    ($($locale:literal),+ $(,)?) => {
        /// The activation email's built-in locales.
        #[cfg(test)]
        pub(crate) const ACTIVATION_LOCALES: &[&str] = &[$($locale),+];

        /// The activation email's built-in messages: (template, locale, Fluent source).
        const BUILTIN_ACTIVATION: &[(&str, &str, &str)] = &[$((
            "activation",
            $locale,
            include_str!(concat!("../templates/activation/", $locale, ".ftl")),
        )),+];
    };
}

/// The built-in markup: (template, [subject, html, text]).
const BUILTIN: &[(&str, [&str; 3])] = &[
    builtin_markup!("activation"),
    builtin_markup!("order-failed"),
    builtin_markup!("alert"),
];

activation_locales!(
    "en", "zh-Hans", "zh-Hant", "ja", "ko", "ms", "id", "th", "vi", "es", "fr", "de", "pt-BR",
    "tr", "ar",
);
const BUILTIN_OPERATOR: [(&str, &str, &str); 2] = [
    (
        "order-failed",
        "en",
        include_str!("../templates/order-failed/en.ftl"),
    ),
    ("alert", "en", include_str!("../templates/alert/en.ftl")),
];
const BUILTIN_LAYOUT: &str = include_str!("../templates/layout.html.hbs");

/// Languages written right to left: their emails get `dir="rtl"` and mirrored spacing.
const RIGHT_TO_LEFT: [&str; 4] = ["ar", "he", "fa", "ur"];

/// Whether `locale` is written right to left.
pub(crate) fn is_right_to_left(locale: &str) -> bool {
    let language = locale.split(['-', '_']).next().unwrap_or_default();
    RIGHT_TO_LEFT
        .iter()
        .any(|l| l.eq_ignore_ascii_case(language))
}

/// A subject and two bodies, rendered.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub(crate) subject: String,
    pub(crate) html: String,
    pub(crate) text: String,
}

/// Without the bodies: an activation email's bodies hold the secret matching ID.
impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("subject", &self.subject)
            .field("html_bytes", &self.html.len())
            .field("text_bytes", &self.text.len())
            .finish()
    }
}

/// The compiled templates.
pub(crate) struct Templates {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
    /// Template name to its locales (those with a `.ftl` file).
    locales: BTreeMap<String, Vec<String>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("locales", &self.locales)
            .finish_non_exhaustive()
    }
}

/// Everything read before compiling: the layout, each template's markup, the messages.
struct Sources {
    layout: String,
    markup: BTreeMap<String, [Option<String>; 3]>,
    messages: Messages,
}

impl Templates {
    /// The built-in templates overlaid by `dir`. Fails on an unreadable folder, an unknown
    /// file, a folder in the old one-folder-per-locale layout (saying what to move where), a
    /// locale missing messages, or a template that does not parse.
    pub(crate) fn load(dir: Option<&Path>) -> Result<Self, ConfigError> {
        let key = "templates_dir";
        let mut sources = Sources {
            layout: BUILTIN_LAYOUT.to_owned(),
            markup: BUILTIN
                .iter()
                .map(|(t, files)| ((*t).to_owned(), files.map(|f| Some(f.to_owned()))))
                .collect(),
            messages: Messages::default(),
        };
        for (template, locale, source) in BUILTIN_ACTIVATION.iter().chain(&BUILTIN_OPERATOR) {
            let origin = format!("the built-in {template}/{locale}.ftl");
            sources
                .messages
                .add(template, locale, (*source).to_owned(), &origin)
                .map_err(|e| ConfigError::new(key, e))?;
        }
        if let Some(dir) = dir {
            overlay(dir, &mut sources)?;
        }

        let messages = Arc::new(sources.messages);
        let mut html = registry(Mode::Html, &messages);
        let mut text = registry(Mode::Text, &messages);
        html.register_partial("layout", &sources.layout)
            .map_err(|e| ConfigError::new(key, format!("{LAYOUT} does not parse: {e}")))?;
        let mut locales: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (template, files) in sources.markup {
            for (file, source) in FILES.iter().zip(files) {
                let name = format!("{template}/{file}");
                let source = source.ok_or_else(|| {
                    ConfigError::new(
                        key,
                        format!(
                            "{name} is missing (a template needs all of {})",
                            FILES.join(", ")
                        ),
                    )
                })?;
                let registry = if *file == "body.html.hbs" {
                    &mut html
                } else {
                    &mut text
                };
                registry
                    .register_template_string(&name, source)
                    .map_err(|e| ConfigError::new(key, format!("{name} does not parse: {e}")))?;
            }
            let found = messages.locales(&template);
            if found.is_empty() {
                return Err(ConfigError::new(
                    key,
                    format!("{template} has no messages: add {template}/en.ftl (one Fluent file per locale)"),
                ));
            }
            for locale in &found {
                let missing = messages.missing(&template, locale);
                if !missing.is_empty() {
                    return Err(ConfigError::new(
                        key,
                        format!(
                            "{template}/{locale}.ftl lacks the messages {} (every locale needs each message of {template}/en.ftl)",
                            missing.join(", ")
                        ),
                    ));
                }
            }
            locales.insert(template, found);
        }
        if let Some(orphan) = messages.templates().find(|t| !locales.contains_key(*t)) {
            return Err(ConfigError::new(
                key,
                format!(
                    "{orphan}/ has messages but no markup: add {orphan}/{}",
                    FILES.join(", ")
                ),
            ));
        }
        Ok(Self {
            html,
            text,
            locales,
        })
    }

    /// Every template name.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.locales.keys().map(String::as_str)
    }

    /// The locales of `template`, if it exists.
    pub(crate) fn locales(&self, template: &str) -> Option<&[String]> {
        self.locales.get(template).map(Vec::as_slice)
    }

    /// Renders `template` in `locale` (one of its locales) against `context`, an object. The
    /// subject is rendered first and given to the bodies as `subject` (the HTML `<title>`);
    /// the layout also gets the writing direction (`dir`, `start`, `end`) and the palette.
    pub(crate) fn render(
        &self,
        template: &str,
        locale: &str,
        context: &Value,
    ) -> Result<Rendered, RenderError> {
        if !self
            .locales(template)
            .is_some_and(|l| l.iter().any(|x| x == locale))
        {
            return Err(RenderError::MissingTemplate {
                template: template.to_owned(),
                locale: locale.to_owned(),
            });
        }
        let fail = |file: &str, e: handlebars::RenderError| RenderError::Template {
            template: template.to_owned(),
            locale: locale.to_owned(),
            file: file.to_owned(),
            reason: e.to_string(),
        };
        let name = |file: &str| format!("{template}/{file}");
        let mut context = context.clone();
        let rtl = is_right_to_left(locale);
        if let Value::Object(map) = &mut context {
            let (dir, start, end) = if rtl {
                ("rtl", "right", "left")
            } else {
                ("ltr", "left", "right")
            };
            for (k, v) in [
                ("template", template),
                ("locale", locale),
                ("dir", dir),
                ("start", start),
                ("end", end),
            ] {
                map.insert(k.to_owned(), Value::String(v.to_owned()));
            }
            map.insert(
                "palette".to_owned(),
                serde_json::to_value(PALETTE).unwrap_or(Value::Null),
            );
        }
        let subject = self
            .text
            .render(&name(FILES[0]), &context)
            .map_err(|e| fail(FILES[0], e))?;
        // A header is one line: a template's trailing newline or a line break in a value must
        // not reach it.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Value::Object(map) = &mut context {
            map.insert("subject".to_owned(), Value::String(subject.clone()));
        }
        let html = self
            .html
            .render(&name(FILES[1]), &context)
            .map_err(|e| fail(FILES[1], e))?;
        let text = self
            .text
            .render(&name(FILES[2]), &context)
            .map_err(|e| fail(FILES[2], e))?;
        Ok(Rendered {
            subject,
            html,
            text,
        })
    }
}

fn registry(mode: Mode, messages: &Arc<Messages>) -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    let escape: fn(&str) -> String = match mode {
        Mode::Html => escape_html,
        Mode::Text => str::to_owned,
    };
    match mode {
        Mode::Html => registry.register_escape_fn(escape_html),
        Mode::Text => registry.register_escape_fn(handlebars::no_escape),
    }
    for (name, attribute) in [("t", false), ("ta", true)] {
        registry.register_helper(
            name,
            Box::new(Translate {
                messages: Arc::clone(messages),
                mode,
                escape,
                attribute,
            }),
        );
    }
    registry.register_helper(
        "mailto",
        Box::new(Mailto {
            escape: escape_html,
        }),
    );
    registry
}

/// Escapes what can break out of text or a quoted attribute.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Reads `dir` over the built-in sources.
fn overlay(dir: &Path, sources: &mut Sources) -> Result<(), ConfigError> {
    let key = "templates_dir";
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(key, format!("cannot read {}: {e}", path.display())))
    };
    let layout_path = dir.join(LAYOUT);
    if layout_path.is_file() {
        sources.layout = read(&layout_path)?;
    }
    for template in subfolders(dir)? {
        let template_dir = dir.join(&template);
        if !is_name(&template) {
            return Err(ConfigError::new(
                key,
                format!(
                    "{}: a template folder name uses only a-z, 0-9, '-' and '_'",
                    template_dir.display()
                ),
            ));
        }
        if let Some(old) = subfolders(&template_dir)?.into_iter().next() {
            return Err(ConfigError::new(
                key,
                old_layout(&template_dir, &template, &old),
            ));
        }
        for file in entries(&template_dir)? {
            let path = template_dir.join(&file);
            if let Some(name) = file.strip_suffix(".ftl") {
                let tag = Locale::parse(name)
                    .ok()
                    .filter(|l| !l.as_str().contains([',', ';', '*']))
                    .ok_or_else(|| {
                        ConfigError::new(
                            key,
                            format!(
                                "{}: a messages file is named after its locale, such as en.ftl or zh-Hans.ftl",
                                path.display()
                            ),
                        )
                    })?;
                // `zh-hans.ftl` or `pt_BR.ftl` overrides the built-in zh-Hans or pt-BR.
                let locale = sources
                    .messages
                    .locales(&template)
                    .into_iter()
                    .find(|l| l.eq_ignore_ascii_case(tag.as_str()))
                    .unwrap_or_else(|| tag.as_str().to_owned());
                let origin = path.display().to_string();
                sources
                    .messages
                    .add(&template, &locale, read(&path)?, &origin)
                    .map_err(|e| ConfigError::new(key, e))?;
                continue;
            }
            if !file.ends_with(".hbs") {
                continue;
            }
            let Some(slot) = FILES.iter().position(|f| *f == file) else {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "{}: unknown template file (expected {}, and <locale>.ftl files)",
                        path.display(),
                        FILES.join(", ")
                    ),
                ));
            };
            sources.markup.entry(template.clone()).or_default()[slot] = Some(read(&path)?);
        }
    }
    Ok(())
}

/// What to move where, for a folder in the layout before Fluent (`<template>/<locale>/` with
/// its own markup).
fn old_layout(template_dir: &Path, template: &str, old: &str) -> String {
    format!(
        "{}: templates no longer have a folder of markup per locale. Move the markup changes of {old}/body.html.hbs, {old}/body.txt.hbs and {old}/subject.hbs into {template}/body.html.hbs, body.txt.hbs and subject.hbs (one set for every locale, asking for sentences with {{{{t \"id\"}}}}), and the sentences into {template}/{old}.ftl (Fluent; the built-in crates/notify-email/templates/{template}/en.ftl lists every message id), then remove {old}/",
        template_dir.join(old).display()
    )
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The names of the visible subfolders of `dir`, sorted.
fn subfolders(dir: &Path) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for name in entries(dir)? {
        if dir.join(&name).is_dir() {
            out.push(name);
        }
    }
    Ok(out)
}

/// The names of the visible entries of `dir`, sorted.
fn entries(dir: &Path) -> Result<Vec<String>, ConfigError> {
    let listing = std::fs::read_dir(dir).map_err(|e| {
        ConfigError::new(
            "templates_dir",
            format!("cannot read {}: {e}", dir.display()),
        )
    })?;
    let mut out = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|e| {
            ConfigError::new(
                "templates_dir",
                format!("cannot read {}: {e}", dir.display()),
            )
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_built_in_set_has_every_locale() {
        let templates = Templates::load(None).expect("built-in templates compile");
        let mut want: Vec<String> = ACTIVATION_LOCALES.iter().map(|l| (*l).to_owned()).collect();
        want.sort();
        assert_eq!(
            templates.locales("activation").map(<[String]>::to_vec),
            Some(want)
        );
        assert_eq!(
            templates.locales("order-failed").map(<[String]>::len),
            Some(1)
        );
        assert_eq!(templates.locales("alert").map(<[String]>::len), Some(1));
    }

    #[test]
    fn the_markup_exists_once_no_locale_folder_holds_any() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        for template in subfolders(&root).expect("readable") {
            let dir = root.join(&template);
            assert!(
                subfolders(&dir).expect("readable").is_empty(),
                "{template}/ has locale folders"
            );
            let hbs: Vec<String> = entries(&dir)
                .expect("readable")
                .into_iter()
                .filter(|f| f.ends_with(".hbs"))
                .collect();
            assert_eq!(
                hbs,
                ["body.html.hbs", "body.txt.hbs", "subject.hbs"],
                "{template}"
            );
        }
    }

    #[test]
    fn strict_mode_refuses_a_missing_variable() {
        let templates = Templates::load(None).expect("compiles");
        let error = templates
            .render("activation", "en", &json!({}))
            .expect_err("strict mode");
        assert!(
            matches!(error, RenderError::Template { ref file, .. } if file == "subject.hbs"),
            "{error}"
        );
    }

    #[test]
    fn a_folder_overrides_markup_and_one_sentence_and_adds_a_locale() {
        let dir = tempfile::tempdir().expect("tempdir");
        let alert = dir.path().join("alert");
        std::fs::create_dir_all(&alert).expect("mkdir");
        std::fs::write(
            alert.join("subject.hbs"),
            "OVERRIDDEN {{kind}} {{t \"when\"}}",
        )
        .expect("write");
        std::fs::write(alert.join("en.ftl"), "when = At\n").expect("write");
        let mut de = BUILTIN_OPERATOR[1].2.to_owned();
        de = de.replace("when = When", "when = Wann");
        std::fs::write(alert.join("de.ftl"), de).expect("write");
        let templates = Templates::load(Some(dir.path())).expect("compiles");
        assert_eq!(templates.locales("alert").map(<[String]>::len), Some(2));
        let context = json!({"kind": "dead_letter", "template": "alert", "locale": "en"});
        let subject = templates
            .text
            .render("alert/subject.hbs", &context)
            .expect("renders");
        assert_eq!(subject, "OVERRIDDEN dead_letter At");
        let context = json!({"kind": "dead_letter", "template": "alert", "locale": "de"});
        let subject = templates
            .text
            .render("alert/subject.hbs", &context)
            .expect("renders");
        assert_eq!(subject, "OVERRIDDEN dead_letter Wann");
    }

    #[test]
    fn a_new_locale_missing_messages_or_an_unknown_file_is_a_config_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let activation = dir.path().join("activation");
        std::fs::create_dir_all(&activation).expect("mkdir");
        std::fs::write(activation.join("nl.ftl"), "heading = Je eSIM is klaar\n").expect("write");
        let error = Templates::load(Some(dir.path())).expect_err("incomplete");
        assert_eq!(error.key(), "templates_dir");
        assert!(
            error
                .reason()
                .contains("activation/nl.ftl lacks the messages"),
            "{error}"
        );
        assert!(error.reason().contains("intro"), "{error}");

        std::fs::remove_file(activation.join("nl.ftl")).expect("rm");
        std::fs::write(activation.join("subjet.hbs"), "typo").expect("write");
        let error = Templates::load(Some(dir.path())).expect_err("unknown file");
        assert!(error.reason().contains("subjet.hbs"), "{error}");
    }

    #[test]
    fn a_folder_in_the_old_layout_says_what_to_move_where() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fr = dir.path().join("activation/fr");
        std::fs::create_dir_all(&fr).expect("mkdir");
        std::fs::write(fr.join("body.html.hbs"), "<p>Votre eSIM</p>").expect("write");
        let error = Templates::load(Some(dir.path())).expect_err("old layout");
        let reason = error.reason();
        assert!(
            reason.contains("no longer have a folder of markup per locale"),
            "{reason}"
        );
        assert!(reason.contains("activation/fr.ftl"), "{reason}");
        assert!(reason.contains("activation/body.html.hbs"), "{reason}");
        assert!(reason.contains("{{t \"id\"}}"), "{reason}");
    }

    #[test]
    fn a_template_that_does_not_parse_is_a_config_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let alert = dir.path().join("alert");
        std::fs::create_dir_all(&alert).expect("mkdir");
        std::fs::write(alert.join("subject.hbs"), "{{#if kind}}unclosed").expect("write");
        let error = Templates::load(Some(dir.path())).expect_err("parse error");
        assert!(
            error.reason().contains("alert/subject.hbs does not parse"),
            "{error}"
        );
    }

    #[test]
    fn arabic_reads_right_to_left_and_the_others_left_to_right() {
        assert!(is_right_to_left("ar") && is_right_to_left("ar-EG"));
        assert!(!is_right_to_left("en") && !is_right_to_left("zh-Hant"));
    }

    #[test]
    fn html_escaping_covers_text_and_quoted_attributes() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;"
        );
        assert_eq!(escape_html("a=b%24"), "a=b%24");
    }
}
