//! On-disk cache of backbone features, so a second run on the same data skips extraction.
//! One append-only file per backbone signature: a header, then records of a 32-byte key
//! (content hash + backbone + preprocessing + augmentation) and `dim` little-endian f32s.
//! Appends take an exclusive file lock; a torn last record (a killed run) is ignored and
//! truncated before the next append.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"LATHEFC1";
const HEADER: u64 = 16;

/// An open feature cache for one backbone signature.
pub struct FeatureCache {
    path: PathBuf,
    dim: usize,
    index: HashMap<[u8; 32], usize>,
    data: Vec<f32>,
}

impl FeatureCache {
    /// Opens (or creates) the cache for `signature` under `dir`.
    pub fn open(dir: &Path, signature: &str, dim: usize) -> Result<Self> {
        let name = format!("{}.bin", &blake3::hash(signature.as_bytes()).to_hex()[..24]);
        let path = dir.join("features").join(name);
        let mut cache = Self {
            path,
            dim,
            index: HashMap::new(),
            data: Vec::new(),
        };
        cache.load()?;
        Ok(cache)
    }

    /// The cache key of one input.
    pub fn key(signature: &str, content_hash: &[u8; 32], variant: &str) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(signature.as_bytes());
        h.update(content_hash);
        h.update(variant.as_bytes());
        *h.finalize().as_bytes()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn get(&self, key: &[u8; 32]) -> Option<&[f32]> {
        let i = *self.index.get(key)?;
        self.data.get(i * self.dim..(i + 1) * self.dim)
    }

    fn record_len(&self) -> u64 {
        32 + 4 * self.dim as u64
    }

    fn load(&mut self) -> Result<()> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("opening feature cache", &self.path, e)),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| Error::io("reading feature cache", &self.path, e))?;
        if bytes.len() < HEADER as usize
            || &bytes[..8] != MAGIC
            || read_u32(&bytes[8..12]) as usize != self.dim
        {
            // Unknown or damaged file: start over rather than trust it.
            return Ok(());
        }
        let rec = self.record_len() as usize;
        for chunk in bytes[HEADER as usize..].chunks_exact(rec) {
            let mut key = [0u8; 32];
            key.copy_from_slice(&chunk[..32]);
            let slot = self.data.len() / self.dim;
            self.index.insert(key, slot);
            self.data.extend(
                chunk[32..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
        Ok(())
    }

    /// Appends records to the file (under an exclusive lock) and to memory.
    pub fn insert_many(&mut self, items: &[([u8; 32], Vec<f32>)]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(items.len() * self.record_len() as usize);
        for (key, values) in items {
            if values.len() != self.dim {
                continue;
            }
            buf.extend_from_slice(key);
            for v in values {
                buf.extend_from_slice(&v.to_le_bytes());
            }
        }
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io("creating cache folder", parent, e))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| Error::io("opening feature cache", &self.path, e))?;
        file.lock()
            .map_err(|e| Error::io("locking feature cache", &self.path, e))?;
        let result = self.append_locked(&mut file, &buf);
        let _ = file.unlock();
        result?;
        for (key, values) in items {
            if values.len() == self.dim {
                let slot = self.data.len() / self.dim;
                self.index.insert(*key, slot);
                self.data.extend_from_slice(values);
            }
        }
        Ok(())
    }

    fn append_locked(&self, file: &mut File, buf: &[u8]) -> Result<()> {
        let io = |e| Error::io("writing feature cache", &self.path, e);
        let len = file.metadata().map_err(io)?.len();
        let mut header = [0u8; HEADER as usize];
        let valid_header = len >= HEADER && {
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            file.read_exact(&mut header).map_err(io)?;
            &header[..8] == MAGIC && read_u32(&header[8..12]) as usize == self.dim
        };
        if !valid_header {
            file.set_len(0).map_err(io)?;
            header = [0u8; HEADER as usize];
            header[..8].copy_from_slice(MAGIC);
            header[8..12].copy_from_slice(&(self.dim as u32).to_le_bytes());
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            file.write_all(&header).map_err(io)?;
        } else {
            // Drop a torn last record left by a killed run.
            let whole = HEADER + (len - HEADER) / self.record_len() * self.record_len();
            if whole != len {
                file.set_len(whole).map_err(io)?;
            }
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        file.write_all(buf).map_err(io)?;
        file.sync_data().map_err(io)
    }
}

fn read_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen_and_torn_records() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = FeatureCache::key("sig", &[1; 32], "");
        let k2 = FeatureCache::key("sig", &[2; 32], "flip");
        let mut c = FeatureCache::open(dir.path(), "sig", 3).unwrap();
        c.insert_many(&[(k1, vec![1.0, 2.0, 3.0])]).unwrap();
        // Simulate a run killed mid-write: half a record at the end.
        let path = c.path().to_path_buf();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[9u8; 20]).unwrap();
        let mut c = FeatureCache::open(dir.path(), "sig", 3).unwrap();
        assert_eq!(c.get(&k1), Some(&[1.0, 2.0, 3.0][..]));
        c.insert_many(&[(k2, vec![4.0, 5.0, 6.0])]).unwrap();
        let c = FeatureCache::open(dir.path(), "sig", 3).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&k2), Some(&[4.0, 5.0, 6.0][..]));
        // Another signature is another file.
        assert!(
            FeatureCache::open(dir.path(), "other", 3)
                .unwrap()
                .is_empty()
        );
    }
}
