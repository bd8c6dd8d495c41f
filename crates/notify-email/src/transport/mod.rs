//! How messages leave: SMTP (`smtp/`: our own connections and pool, rustls) or lettre's file
//! transport (`file.rs`), each mapping its failures onto "can a retry help?".
//!
//! The layout follows lettre's own (`transport/{smtp,file}/`, each with its error).

mod file;
mod smtp;

use esim_courier_core::NotifyError;
use lettre::Message;

use crate::{ConfigError, TransportConfig};

/// A configured transport.
#[derive(Debug)]
pub(crate) enum Transport {
    /// `.eml` files in a folder.
    File(file::File),
    /// An SMTP server (boxed: only one transport exists per notifier).
    Smtp(Box<smtp::Smtp>),
}

impl Transport {
    /// Checks the section and prepares the transport. Does no I/O.
    pub(crate) fn from_config(config: &TransportConfig) -> Result<Self, ConfigError> {
        match config {
            TransportConfig::File { dir } => file::File::new(dir).map(Self::File),
            TransportConfig::Smtp(smtp) => {
                smtp::Smtp::from_config(smtp).map(|s| Self::Smtp(Box::new(s)))
            }
        }
    }

    /// Sends `message` to the recipients of its headers. Returns an id for the receipt: the
    /// file name, or the server's reply.
    pub(crate) async fn send(&self, message: &Message) -> Result<String, NotifyError> {
        match self {
            Self::File(file) => file.send(message).await,
            Self::Smtp(smtp) => smtp.deliver(message).await,
        }
    }

    /// SMTP: connects, logs in and sends `NOOP`. File: the folder exists (or is created) and
    /// takes a file.
    pub(crate) async fn healthcheck(&self) -> Result<(), NotifyError> {
        match self {
            Self::File(file) => file.healthcheck().await,
            Self::Smtp(smtp) => smtp.healthcheck().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(extra: &str) -> Result<Transport, ConfigError> {
        let config: TransportConfig =
            toml::from_str(&format!("type = \"smtp\"\n{extra}")).expect("valid section");
        Transport::from_config(&config)
    }

    fn server(t: &Transport) -> &str {
        match t {
            Transport::Smtp(s) => &s.server,
            Transport::File { .. } => "file",
        }
    }

    fn tls_of(t: &Transport) -> String {
        match t {
            Transport::Smtp(s) => format!("{:?}", s.tls)
                .split('(')
                .next()
                .unwrap_or("?")
                .to_owned(),
            Transport::File { .. } => "file".to_owned(),
        }
    }

    #[test]
    fn smtp_urls_pick_ports_and_tls() {
        let tls = [
            (r#"url = "smtp://127.0.0.1:1025""#, "None"),
            (r#"url = "smtp://localhost:1025""#, "None"),
            (r#"url = "smtp://[::1]:1025""#, "None"),
            (r#"url = "smtp://10.0.0.5:25""#, "Required"),
            (r#"url = "smtp://smtp.example.com""#, "Required"),
            (r#"url = "smtps://smtp.example.com""#, "Wrapper"),
            (
                "url = \"smtp://127.0.0.1:1025\"\ntls = \"starttls\"",
                "Required",
            ),
        ];
        for (section, expected) in tls {
            assert_eq!(
                tls_of(&smtp(section).expect("valid")),
                expected,
                "{section}"
            );
        }
        let servers = [
            (r#"url = "smtp://127.0.0.1:1025""#, "127.0.0.1:1025"),
            (
                r#"url = "smtps://smtp.example.com""#,
                "smtp.example.com:465",
            ),
            (r#"url = "smtp://smtp.example.com""#, "smtp.example.com:587"),
            ("url = \"smtp://mail.lan\"\ntls = \"none\"", "mail.lan:25"),
            (r#"url = "smtp://[::1]:2525""#, "[::1]:2525"),
        ];
        for (section, expected) in servers {
            assert_eq!(
                server(&smtp(section).expect("valid")),
                expected,
                "{section}"
            );
        }
    }

    #[test]
    fn bad_smtp_sections_name_the_key_and_never_echo_secrets() {
        let cases = [
            (r#"url = "smtp://user:s3cr3tpw@smtp.example.com""#, "transport.url"),
            (r#"url = "http://smtp.example.com""#, "transport.url"),
            (r#"url = "smtp://smtp.example.com?tls=required""#, "transport.url"),
            (r#"url = "not a url""#, "transport.url"),
            ("url = \"smtps://smtp.example.com\"\ntls = \"none\"", "transport.tls"),
            ("url = \"smtp://smtp.example.com\"\nusername = \"u\"", "transport.password"),
            ("url = \"smtp://smtp.example.com\"\npassword = \"s3cr3tpw\"", "transport.username"),
            ("url = \"smtp://smtp.example.com\"\ntls = \"none\"\nusername = \"u\"\npassword = \"s3cr3tpw\"", "transport.tls"),
            ("url = \"smtp://smtp.example.com\"\npool_max_size = 0", "transport.pool_max_size"),
            ("url = \"smtp://smtp.example.com\"\ntimeout = \"0s\"", "transport.timeout"),
        ];
        for (section, key) in cases {
            let error = smtp(section).expect_err(section);
            assert_eq!(error.key(), key, "{section}");
            assert!(!error.to_string().contains("s3cr3tpw"), "{error}");
        }
        // Plain text with a password is fine when it never leaves the machine.
        assert!(
            smtp("url = \"smtp://127.0.0.1:1025\"\nusername = \"u\"\npassword = \"p\"").is_ok()
        );
    }

    #[test]
    fn the_debug_output_of_a_transport_hides_the_password() {
        let t =
            smtp("url = \"smtps://smtp.example.com\"\nusername = \"u\"\npassword = \"s3cr3tpw\"")
                .expect("valid");
        assert!(!format!("{t:?}").contains("s3cr3tpw"));
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient() {
        let port = free_port();
        let t = smtp(&format!(
            "url = \"smtp://127.0.0.1:{port}\"\ntimeout = \"2s\""
        ))
        .expect("valid");
        let error = t.healthcheck().await.expect_err("nothing listens");
        assert!(error.is_transient(), "{error}");
        assert!(
            error.message().contains(&format!("127.0.0.1:{port}")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_server_that_stops_answering_is_given_up_on_at_the_deadline() {
        // A peer that greets and then never answers EHLO: lettre alone would wait forever.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let stalled = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                let _ =
                    tokio::io::AsyncWriteExt::write_all(&mut socket, b"220 stalled.test ESMTP\r\n")
                        .await;
                held.push(socket);
            }
        });
        let t = smtp(&format!(
            "url = \"smtp://127.0.0.1:{port}\"\ntimeout = \"1s\""
        ))
        .expect("valid");
        let started = std::time::Instant::now();
        let error = t.healthcheck().await.expect_err("stalled");
        assert!(error.is_transient(), "{error}");
        assert!(error.message().contains("within 1s"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // The stalled connection was dropped; the next attempt opens another, with the same
        // bounded wait.
        assert!(t
            .healthcheck()
            .await
            .expect_err("still stalled")
            .is_transient());
        stalled.abort();
    }

    #[test]
    fn a_transport_dropped_after_its_runtime_does_not_panic() {
        let port = free_port();
        let t = smtp(&format!(
            "url = \"smtp://127.0.0.1:{port}\"\ntimeout = \"2s\""
        ))
        .expect("valid");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // The failed check still starts the pool's sweeping task on this runtime.
        assert!(runtime.block_on(t.healthcheck()).is_err());
        drop(runtime);
        drop(t);
    }

    fn free_port() -> u16 {
        // Bind then drop, so the port is very likely closed.
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port")
    }

    #[tokio::test]
    async fn the_file_transport_creates_its_folder_and_checks_it_is_writable() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("mail/out");
        let t = Transport::from_config(&TransportConfig::File { dir: dir.clone() }).expect("valid");
        t.healthcheck().await.expect("writable");
        assert!(dir.is_dir());
        assert_eq!(
            std::fs::read_dir(&dir).expect("list").count(),
            0,
            "the probe file is removed"
        );
    }
}
