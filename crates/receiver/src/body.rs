//! Reading a request body with a size limit applied while reading, before any parsing.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use crate::ApiError;

/// A body read up to a limit.
pub(crate) struct Limited {
    /// The bytes read: all of the body, or its first `limit` bytes when it was larger.
    pub(crate) bytes: web::BytesMut,
    /// Whether the body was larger than the limit.
    pub(crate) too_large: bool,
}

/// Reads at most `limit` bytes (one more to detect an overflow), whatever `Content-Length`
/// says; a declared length over the limit stops at once.
pub(crate) async fn read(
    req: &HttpRequest,
    payload: &mut web::Payload,
    limit: usize,
) -> Result<Limited, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut bytes = web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit + 1));
    let mut too_large = declared.is_some_and(|n| n > limit);
    while !too_large {
        match payload.next().await {
            Some(Ok(chunk)) => {
                let room = limit + 1 - bytes.len();
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                too_large = bytes.len() > limit;
            }
            Some(Err(e)) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    format!("the request body could not be read: {e}"),
                ));
            }
            None => break,
        }
    }
    if too_large {
        bytes.truncate(limit);
    }
    Ok(Limited { bytes, too_large })
}
