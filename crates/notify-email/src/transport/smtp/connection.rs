//! Opening an SMTP connection: TCP with `TCP_NODELAY` (the final `.` line of a message is a
//! small write after the body; with Nagle's algorithm it would wait for the server's delayed
//! ACK, ~40 ms per email), and implicit TLS on that socket.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_util::io::{AsyncRead as _, AsyncWrite as _};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncTokioStream, TlsParameters};
use tokio::io::ReadBuf;
use tokio::net::TcpStream;

use crate::ConfigError;

/// A TCP connection to `host:port` with `TCP_NODELAY`, trying each address for at most
/// `timeout`.
pub(crate) async fn open(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = None;
    for address in tokio::net::lookup_host((host, port)).await? {
        match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(socket)) => {
                socket.set_nodelay(true)?;
                return Ok(socket);
            }
            Ok(Err(e)) => last = Some(e),
            Err(_) => {
                last = Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection timed out",
                ));
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "could not resolve to any address")
    }))
}

/// An implicit-TLS stream (lettre's, on the notifier's socket), handed back to lettre as the
/// stream its SMTP connection reads and writes.
#[allow(deprecated)]
#[derive(Debug)]
pub(super) struct Encrypted(pub(super) AsyncNetworkStream);

impl AsyncTokioStream for Encrypted {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}

impl tokio::io::AsyncRead for Encrypted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let read = ready!(Pin::new(&mut self.0).poll_read(cx, buf.initialize_unfilled()))?;
        buf.advance(read);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Encrypted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

pub(super) fn tls_parameters(host: &str) -> Result<TlsParameters, ConfigError> {
    TlsParameters::new_rustls(host.to_owned()).map_err(|e| {
        ConfigError::new(
            "transport.tls",
            format!("cannot set up TLS for {host}: {e}"),
        )
    })
}
