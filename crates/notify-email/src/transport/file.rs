//! lettre's file transport: each message an `.eml` file in a folder.

use std::path::{Path, PathBuf};

use esim_courier_core::NotifyError;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};

use crate::ConfigError;

/// `.eml` files in a folder.
#[derive(Debug)]
pub(crate) struct File {
    pub(super) dir: PathBuf,
    inner: AsyncFileTransport<Tokio1Executor>,
}

impl File {
    pub(super) fn new(dir: &Path) -> Result<Self, ConfigError> {
        if dir.as_os_str().is_empty() {
            return Err(ConfigError::new("transport.dir", "is empty"));
        }
        Ok(Self {
            dir: dir.to_owned(),
            inner: AsyncFileTransport::new(dir),
        })
    }

    /// Writes the message; its id is the file name.
    pub(super) async fn send(&self, message: &Message) -> Result<String, NotifyError> {
        let dir = &self.dir;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| file_error(dir, &e))?;
        let id = self
            .inner
            .send_raw(message.envelope(), &message.formatted())
            .await
            .map_err(|e| {
                NotifyError::transient(format!(
                    "cannot write a message into {}: {e}",
                    dir.display()
                ))
            })?;
        Ok(format!("{id}.eml"))
    }

    /// The folder exists (or is created) and takes a file.
    pub(super) async fn healthcheck(&self) -> Result<(), NotifyError> {
        let dir = &self.dir;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| file_error(dir, &e))?;
        let probe = dir.join(format!(".esim-courier-healthcheck-{}", std::process::id()));
        tokio::fs::write(&probe, b"ok")
            .await
            .map_err(|e| file_error(dir, &e))?;
        tokio::fs::remove_file(&probe)
            .await
            .map_err(|e| file_error(dir, &e))
    }
}

/// A folder that cannot be written: permanent when permission is denied (a retry will not
/// change it), transient otherwise (a full disk may be cleared).
fn file_error(dir: &Path, e: &std::io::Error) -> NotifyError {
    let message = format!("{} is not writable: {e}", dir.display());
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        NotifyError::permanent(message)
    } else {
        NotifyError::transient(message)
    }
}
