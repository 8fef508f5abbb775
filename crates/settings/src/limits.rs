//! The bounds every settings reader keeps, so that no file, however it was
//! written, can exhaust the stack, the memory or the time of the process
//! that reads it (`settings validate`, a backup, `sauve run`).
//!
//! The numbers are far above what real files hold (4D's `backup.4DSettings`
//! weighs about 3 KB, nests 7 levels deep and holds about 100 elements;
//! a `sauve.toml` is a few KB) and far below what hurts. A file over one of
//! them is refused before it is parsed or while it is, with an error that
//! names the limit ([`SettingsError::TooLarge`](crate::SettingsError::TooLarge)),
//! never read whole.

use std::io::Read;
use std::path::Path;

use crate::error::{Limit, Location, SettingsError};

/// The most bytes a `backup.4DSettings` or a `sauve.toml` may hold: 1 MiB.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// The most levels of nested elements in a `backup.4DSettings`, the root
/// counting as one.
pub const MAX_DEPTH: usize = 64;
/// The most elements, comments and processing instructions in a
/// `backup.4DSettings`.
pub const MAX_ELEMENTS: usize = 10_000;
/// The most bytes a secret file (`*_file` in `sauve.toml`) may hold: 64 KiB.
pub const MAX_SECRET_BYTES: u64 = 64 << 10;

/// Reads `path` whole when it holds at most `limit` bytes; a bigger file is
/// refused without being read (a file that grows while it is read is
/// refused too).
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, SettingsError> {
    let io = |source| SettingsError::Io {
        action: "cannot read",
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let declared = file.metadata().map_err(io)?.len();
    let too_large = |size: u64| SettingsError::TooLarge {
        file: path.display().to_string(),
        at: Location { line: 1, column: 1 },
        found: format!("the file holds {size} bytes"),
        limit: Limit::Bytes(limit),
    };
    if declared > limit {
        return Err(too_large(declared));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > limit {
        return Err(too_large(read));
    }
    Ok(bytes)
}

/// Refuses `bytes`, the contents of `file`, when they are over `limit`.
pub(crate) fn check_size(bytes: usize, file: &str, limit: u64) -> Result<(), SettingsError> {
    let size = u64::try_from(bytes).unwrap_or(u64::MAX);
    if size > limit {
        return Err(SettingsError::TooLarge {
            file: file.to_owned(),
            at: Location { line: 1, column: 1 },
            found: format!("the file holds {size} bytes"),
            limit: Limit::Bytes(limit),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_people_write_them() {
        assert_eq!(Limit::Bytes(MAX_FILE_BYTES).to_string(), "at most 1 MiB");
        assert_eq!(Limit::Bytes(MAX_SECRET_BYTES).to_string(), "at most 64 KiB");
        assert_eq!(Limit::Bytes(100).to_string(), "at most 100 bytes");
        assert_eq!(
            Limit::Depth(MAX_DEPTH).to_string(),
            "at most 64 levels of nested elements"
        );
    }
}
