//! File helpers every writer uses: atomic writes (temp file + rename) so nothing the user
//! made is ever half-written, sorted directory listings, and content hashing.

use crate::error::{Error, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a sibling temp file is written, flushed to disk and
/// renamed over the target, so a crash leaves either the old file or the new one.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::io("creating folder", parent, e))?;
    }
    let tmp = temp_sibling(path);
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(())
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("writing", path, e));
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("renaming temp file onto", path, e)
    })
}

/// Serializes `value` as pretty JSON and writes it atomically.
pub fn write_json<T: serde::Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::io("serializing JSON for", path, std::io::Error::other(e)))?;
    text.push('\n');
    atomic_write(path, text.as_bytes())
}

/// Reads and parses a JSON file, naming the file on failure.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::model(
            format!("{e}; the file is damaged or was not written by Lathe"),
            path,
        )
    })
}

/// A temp path next to `path` (same folder, so the rename stays on one file system).
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Entries of a folder, sorted by name so every listing (and so every run) is deterministic.
/// Hidden entries (starting with `.`) are left out.
pub fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let read = fs::read_dir(dir).map_err(|e| Error::io("listing folder", dir, e))?;
    let mut entries = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| Error::io("listing folder", dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        entries.push(entry.path());
    }
    entries.sort();
    Ok(entries)
}

/// BLAKE3 hash of a byte slice as lowercase hex.
pub fn hash_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Replaces the folder `target` with the fully written folder `staged` in two renames, so an
/// interrupted export leaves the previous one intact (the old copy is removed only after).
pub fn replace_dir(staged: &Path, target: &Path) -> Result<()> {
    let backup = temp_sibling(target).with_extension("old");
    let had_old = target.exists();
    if had_old {
        fs::rename(target, &backup).map_err(|e| Error::io("moving aside", target, e))?;
    }
    if let Err(e) = fs::rename(staged, target) {
        if had_old {
            let _ = fs::rename(&backup, target);
        }
        return Err(Error::io("moving export into place at", target, e));
    }
    if had_old {
        let _ = fs::remove_dir_all(&backup);
    }
    Ok(())
}

/// Copies every file of `src` (not recursive into hidden files) into the new folder `dst`.
pub fn copy_dir(src: &Path, dst: &Path) -> Result<()> {
    fs::create_dir_all(dst).map_err(|e| Error::io("creating folder", dst, e))?;
    for entry in sorted_entries(src)? {
        let Some(name) = entry.file_name() else {
            continue;
        };
        let to = dst.join(name);
        if entry.is_dir() {
            copy_dir(&entry, &to)?;
        } else {
            fs::copy(&entry, &to).map_err(|e| Error::io("copying", &entry, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.txt");
        atomic_write(&path, b"one").unwrap();
        atomic_write(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "temp files left behind");
    }

    #[test]
    fn replace_dir_swaps_folders() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("model");
        let staged = dir.path().join("staged");
        fs::create_dir_all(&target).unwrap();
        fs::write(target.join("old.txt"), "old").unwrap();
        fs::create_dir_all(&staged).unwrap();
        fs::write(staged.join("new.txt"), "new").unwrap();
        replace_dir(&staged, &target).unwrap();
        assert!(target.join("new.txt").exists());
        assert!(!target.join("old.txt").exists());
        assert!(!staged.exists());
    }
}
