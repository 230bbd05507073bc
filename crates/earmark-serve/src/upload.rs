//! Multipart uploads, streamed to a private spool file in the home as they
//! arrive, never held in memory, and refused past the size bound.

use std::collections::BTreeMap;

use axum::extract::Multipart;
use earmark_jobs::{JobError, Jobs, Spooled};
use tokio::io::AsyncWriteExt;

use crate::ApiError;

/// The field carrying the file.
pub const FILE_FIELD: &str = "file";
/// The longest text field taken, bytes.
const MAX_TEXT_FIELD_BYTES: usize = 4096;

/// An upload's file, spooled, and its text fields.
pub(crate) struct Upload {
    pub file: Spooled,
    pub bytes: u64,
    pub fields: BTreeMap<String, String>,
}

/// Reads `multipart` to its end: the `file` field into a spool file of
/// `jobs` (at most `limit_bytes`), the other fields as short text. The
/// upload's own file name is never used: the spool names its files.
pub(crate) async fn receive(
    jobs: &Jobs,
    mut multipart: Multipart,
    limit_bytes: u64,
) -> Result<Upload, ApiError> {
    let mut file = None;
    let mut fields = BTreeMap::new();
    while let Some(mut field) = multipart.next_field().await.map_err(ApiError::bad_upload)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == FILE_FIELD {
            if file.is_some() {
                return Err(ApiError::usage("give one file field, not several"));
            }
            let spooled = jobs.spool_file()?;
            let mut out = tokio::fs::File::create(spooled.path())
                .await
                .map_err(|e| JobError::write("the spool", e))?;
            let mut bytes = 0u64;
            while let Some(chunk) = field.chunk().await.map_err(ApiError::bad_upload)? {
                bytes += chunk.len() as u64;
                if bytes > limit_bytes {
                    drop(field);
                    return Err(refuse(multipart, JobError::TooLarge { limit_bytes }.into()).await);
                }
                out.write_all(&chunk)
                    .await
                    .map_err(|e| JobError::write("the spool", e))?;
            }
            out.sync_all()
                .await
                .map_err(|e| JobError::write("the spool", e))?;
            file = Some((spooled, bytes));
        } else {
            let mut text = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(ApiError::bad_upload)? {
                text.extend_from_slice(&chunk);
                if text.len() > MAX_TEXT_FIELD_BYTES {
                    return Err(ApiError::usage(format!(
                        "field {} is longer than {MAX_TEXT_FIELD_BYTES} bytes",
                        earmark::terminal_safe(&name)
                    )));
                }
            }
            let text = String::from_utf8(text).map_err(|_| {
                ApiError::usage(format!(
                    "field {} is not UTF-8 text",
                    earmark::terminal_safe(&name)
                ))
            })?;
            fields.insert(name, text);
        }
    }
    let (file, bytes) =
        file.ok_or_else(|| ApiError::usage(format!("the upload has no {FILE_FIELD} field")))?;
    if bytes == 0 {
        return Err(ApiError::usage(
            "the uploaded file is empty; nothing was recorded",
        ));
    }
    Ok(Upload {
        file,
        bytes,
        fields,
    })
}

/// The most of a refused upload's body read and dropped before the
/// refusal is sent, bytes.
const DRAIN_LIMIT_BYTES: u64 = 8 << 20;

/// `error`, once the rest of the refused upload's body is read and dropped
/// (at most [`DRAIN_LIMIT_BYTES`]): a client still sending then reads the
/// answer instead of finding the connection closed under it. A larger body
/// is cut off, so that no one can make the service read gigabytes it
/// refused.
pub(crate) async fn refuse(mut multipart: Multipart, error: ApiError) -> ApiError {
    let mut drained = 0u64;
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(chunk)) = field.chunk().await {
            drained += chunk.len() as u64;
            if drained > DRAIN_LIMIT_BYTES {
                return error;
            }
        }
    }
    error
}
