//! Key files: created with mode 0600 and `create_new`, read back strictly.

use std::io::Write;
use std::path::Path;

use earmark_keys::SecretKey;

use crate::exit::Failure;

/// Creates a new key file; refuses to overwrite an existing one.
pub fn create(path: &Path) -> Result<(), Failure> {
    let key = SecretKey::generate();
    let text = key.to_file_text();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::key(format!(
                "{} already exists; refusing to overwrite a key",
                path.display()
            ))
        } else {
            Failure::key(format!("cannot create {}: {e}", path.display()))
        }
    })?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| Failure::key(format!("cannot write {}: {e}", path.display())))
}

/// Reads a key file.
pub fn load(path: &Path) -> Result<SecretKey, Failure> {
    let text = std::fs::read(path)
        .map_err(|e| Failure::key(format!("cannot read key file {}: {e}", path.display())))?;
    let text = zeroize::Zeroizing::new(text);
    let text = std::str::from_utf8(&text)
        .map_err(|_| Failure::key(format!("{} is not an earmark key file", path.display())))?;
    SecretKey::from_file_text(text).map_err(|e| Failure::key(format!("{}: {e}", path.display())))
}
