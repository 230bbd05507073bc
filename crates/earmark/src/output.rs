//! Files earmark creates for the user beside its copies (a tamper-map plot,
//! a report): created exclusively, never through a link, never inside the
//! home. A symlink planted where an output is asked for (pointing at the
//! master key, say) is refused, not followed.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Creates `path` for writing, mode 0644 whatever the umask allows more of.
///
/// Refuses, as [`Error::Write`]:
/// - a path that already exists, a symlink included (`O_EXCL`: nothing is
///   overwritten and no link is followed);
/// - a path inside `home` (the home holds the key, the ledger and the
///   masters; outputs never go there).
pub fn create_output_file(path: &Path, home: Option<&Path>) -> Result<File> {
    if let Some(home) = home {
        if is_inside(path, home) {
            return Err(Error::write(format!(
                "{} is inside the earmark home {}; write outputs elsewhere",
                path.display(),
                home.display()
            )));
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o644);
    }
    options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::write(format!(
                "{} already exists; refusing to overwrite it (or to follow a link there)",
                path.display()
            ))
        } else {
            Error::write_failed(format_args!("cannot create {}", path.display()), e)
        }
    })
}

/// Checks the directory copies go to before anything is registered: not
/// inside `home`, and, when it must be created, given without `..` (which
/// `create_dir_all` would follow through directories it creates on the way).
pub(crate) fn check_output_dir(out: &Path, home: &Path) -> Result<()> {
    if is_inside(out, home) {
        return Err(Error::write(format!(
            "{} is inside the earmark home {}; write copies elsewhere",
            out.display(),
            home.display()
        )));
    }
    if !out.is_dir()
        && out
            .components()
            .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(Error::write(format!(
            "{} does not exist and goes through '..'; name the directory to create plainly",
            out.display()
        )));
    }
    Ok(())
}

/// Creates the directory copies go to (and its parents), mode 0755 at
/// most whatever the umask allows.
pub(crate) fn create_output_dir(out: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o755);
    }
    builder
        .create(out)
        .map_err(|e| Error::write_failed(format_args!("cannot create {}", out.display()), e))
}

/// Whether `path` (which need not exist) lies inside `dir`, links and `..`
/// resolved as far as the parts that exist.
pub(crate) fn is_inside(path: &Path, dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    resolved(path).is_some_and(|p| p.starts_with(&dir))
}

/// `path` made absolute: its deepest existing ancestor canonicalised, the
/// rest appended as written (`..` in the rest is refused as unresolvable).
fn resolved(path: &Path) -> Option<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return Some(out);
        }
        let name = existing.file_name()?;
        if name == ".." {
            return None;
        }
        rest.push(name.to_os_string());
        existing = existing.parent()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_existing_files_and_the_home_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join("keystore")).unwrap();
        let key = home.join("keystore/master.key");
        std::fs::write(&key, "secret").unwrap();
        let link = dir.path().join("k.png");
        std::os::unix::fs::symlink(&key, &link).unwrap();
        assert!(create_output_file(&link, None).is_err());
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "secret");
        assert!(create_output_file(&key, None).is_err());
        let inside = home.join("plot.png");
        assert!(create_output_file(&inside, Some(&home)).is_err());
        assert!(!inside.exists());
        let via_dots = dir.path().join("out/../home/new.png");
        std::fs::create_dir_all(dir.path().join("out")).unwrap();
        assert!(create_output_file(&via_dots, Some(&home)).is_err());
        let fine = dir.path().join("plot.png");
        create_output_file(&fine, Some(&home)).unwrap();
        assert!(create_output_file(&fine, Some(&home)).is_err());
    }
}
