//! Loading and compiling the handlebars templates: the built-in set (the repository's
//! `crates/notify-email/templates/`, embedded at compile time) overlaid by an optional folder, so a reseller
//! can change wording or branding without rebuilding.
//!
//! Layout: `<template>/<locale>/{subject.hbs,body.html.hbs,body.txt.hbs}` plus
//! `layout.html.hbs`, the HTML chrome every `body.html.hbs` wraps itself in with
//! `{{#> layout}} … {{/layout}}`.
//!
//! Both registries run in strict mode, so a misspelt variable is an error rather than a blank
//! in a customer's email. The HTML registry escapes `& < > " '`, enough for text and quoted
//! attributes (every attribute in the templates is quoted), and leaves `=` alone so links
//! read as written. Subjects and text bodies are not escaped.

use std::collections::BTreeMap;
use std::path::Path;

use esim_courier_core::Locale;
use handlebars::Handlebars;
use serde_json::Value;

use crate::{ConfigError, RenderError};

/// The subject, HTML body and text body files of one template in one locale.
pub(crate) const FILES: [&str; 3] = ["subject.hbs", "body.html.hbs", "body.txt.hbs"];
/// The shared HTML chrome, registered as the partial `layout`.
pub(crate) const LAYOUT: &str = "layout.html.hbs";

macro_rules! builtin {
    ($template:literal, $locale:literal) => {
        (
            $template,
            $locale,
            [
                include_str!(concat!(
                    "../templates/",
                    $template,
                    "/",
                    $locale,
                    "/subject.hbs"
                )),
                include_str!(concat!(
                    "../templates/",
                    $template,
                    "/",
                    $locale,
                    "/body.html.hbs"
                )),
                include_str!(concat!(
                    "../templates/",
                    $template,
                    "/",
                    $locale,
                    "/body.txt.hbs"
                )),
            ],
        )
    };
}

/// The built-in templates: (template, locale, [subject, html, text]).
const BUILTIN: &[(&str, &str, [&str; 3])] = &[
    builtin!("activation", "en"),
    builtin!("activation", "zh-Hans"),
    builtin!("activation", "zh-Hant"),
    builtin!("activation", "ms"),
    builtin!("activation", "ja"),
    builtin!("order-failed", "en"),
    builtin!("alert", "en"),
];
const BUILTIN_LAYOUT: &str = include_str!("../templates/layout.html.hbs");

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
    /// Template name to its locale folders.
    locales: BTreeMap<String, Vec<String>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("locales", &self.locales)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// The built-in templates overlaid by `dir`. Fails on an unreadable folder, an unknown
    /// `.hbs` file, an incomplete locale or a template that does not parse.
    pub(crate) fn load(dir: Option<&Path>) -> Result<Self, ConfigError> {
        let mut layout = BUILTIN_LAYOUT.to_owned();
        let mut sources: BTreeMap<(String, String), [Option<String>; 3]> = BUILTIN
            .iter()
            .map(|(t, l, files)| {
                (
                    ((*t).to_owned(), (*l).to_owned()),
                    files.map(|f| Some(f.to_owned())),
                )
            })
            .collect();
        if let Some(dir) = dir {
            overlay(dir, &mut layout, &mut sources)?;
        }

        let mut html = registry(true);
        let mut text = registry(false);
        html.register_partial("layout", &layout).map_err(|e| {
            ConfigError::new("templates_dir", format!("{LAYOUT} does not parse: {e}"))
        })?;
        let mut locales: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for ((template, locale), files) in sources {
            for (file, source) in FILES.iter().zip(files) {
                let name = format!("{template}/{locale}/{file}");
                let source = source.ok_or_else(|| {
                    ConfigError::new(
                        "templates_dir",
                        format!(
                            "{name} is missing (a locale needs all of {})",
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
                    .map_err(|e| {
                        ConfigError::new("templates_dir", format!("{name} does not parse: {e}"))
                    })?;
            }
            locales.entry(template).or_default().push(locale);
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

    /// The locale folders of `template`, if it exists.
    pub(crate) fn locales(&self, template: &str) -> Option<&[String]> {
        self.locales.get(template).map(Vec::as_slice)
    }

    /// Renders `template` in `locale` (an existing folder) against `context`, an object. The
    /// subject is rendered first and given to the bodies as `subject` (the HTML `<title>`).
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
        let name = |file: &str| format!("{template}/{locale}/{file}");
        let subject = self
            .text
            .render(&name(FILES[0]), context)
            .map_err(|e| fail(FILES[0], e))?;
        // A header is one line: a template's trailing newline or a line break in a value must
        // not reach it.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut context = context.clone();
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

fn registry(html: bool) -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    if html {
        registry.register_escape_fn(escape_html);
    } else {
        registry.register_escape_fn(handlebars::no_escape);
    }
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
fn overlay(
    dir: &Path,
    layout: &mut String,
    sources: &mut BTreeMap<(String, String), [Option<String>; 3]>,
) -> Result<(), ConfigError> {
    let key = "templates_dir";
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(key, format!("cannot read {}: {e}", path.display())))
    };
    let layout_path = dir.join(LAYOUT);
    if layout_path.is_file() {
        *layout = read(&layout_path)?;
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
        for locale in subfolders(&template_dir)? {
            let locale_dir = template_dir.join(&locale);
            if Locale::parse(&locale).is_err() {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "{}: a locale folder is a language tag such as en or zh-Hans",
                        locale_dir.display()
                    ),
                ));
            }
            let entry = sources
                .entry((template.clone(), locale.clone()))
                .or_default();
            for file in entries(&locale_dir)? {
                if !file.ends_with(".hbs") {
                    continue;
                }
                let Some(slot) = FILES.iter().position(|f| *f == file) else {
                    return Err(ConfigError::new(
                        key,
                        format!(
                            "{}: unknown template file (expected {})",
                            locale_dir.join(&file).display(),
                            FILES.join(", ")
                        ),
                    ));
                };
                entry[slot] = Some(read(&locale_dir.join(&file))?);
            }
        }
    }
    Ok(())
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
        assert_eq!(
            templates.locales("activation").map(<[String]>::to_vec),
            Some(vec![
                "en".into(),
                "ja".into(),
                "ms".into(),
                "zh-Hans".into(),
                "zh-Hant".into()
            ])
        );
        assert_eq!(
            templates.locales("order-failed").map(<[String]>::len),
            Some(1)
        );
        assert_eq!(templates.locales("alert").map(<[String]>::len), Some(1));
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
    fn a_folder_overrides_one_file_and_adds_a_locale() {
        let dir = tempfile::tempdir().expect("tempdir");
        let en = dir.path().join("alert/en");
        std::fs::create_dir_all(&en).expect("mkdir");
        std::fs::write(en.join("subject.hbs"), "OVERRIDDEN {{kind}}").expect("write");
        let de = dir.path().join("alert/de");
        std::fs::create_dir_all(&de).expect("mkdir");
        for file in FILES {
            std::fs::write(de.join(file), "Alarm {{kind}}").expect("write");
        }
        let templates = Templates::load(Some(dir.path())).expect("compiles");
        assert_eq!(templates.locales("alert").map(<[String]>::len), Some(2));
        let context = json!({"kind": "dead_letter"});
        let subject = templates
            .text
            .render("alert/en/subject.hbs", &context)
            .expect("renders");
        assert_eq!(subject, "OVERRIDDEN dead_letter");
        let de_body = templates
            .text
            .render("alert/de/body.txt.hbs", &context)
            .expect("renders");
        assert_eq!(de_body, "Alarm dead_letter");
    }

    #[test]
    fn an_incomplete_new_locale_or_an_unknown_file_is_a_config_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fr = dir.path().join("activation/fr");
        std::fs::create_dir_all(&fr).expect("mkdir");
        std::fs::write(fr.join("subject.hbs"), "Votre eSIM").expect("write");
        let error = Templates::load(Some(dir.path())).expect_err("incomplete");
        assert_eq!(error.key(), "templates_dir");
        assert!(
            error
                .reason()
                .contains("activation/fr/body.html.hbs is missing"),
            "{error}"
        );

        std::fs::write(fr.join("subjet.hbs"), "typo").expect("write");
        let error = Templates::load(Some(dir.path())).expect_err("unknown file");
        assert!(error.reason().contains("subjet.hbs"), "{error}");
    }

    #[test]
    fn a_template_that_does_not_parse_is_a_config_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let en = dir.path().join("alert/en");
        std::fs::create_dir_all(&en).expect("mkdir");
        std::fs::write(en.join("subject.hbs"), "{{#if kind}}unclosed").expect("write");
        let error = Templates::load(Some(dir.path())).expect_err("parse error");
        assert!(
            error
                .reason()
                .contains("alert/en/subject.hbs does not parse"),
            "{error}"
        );
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
