//! Checks the sample tables of an MP4 / M4A file before symphonia reads it. symphonia 0.5.5
//! allocates a table's entries up front from the count in its header, so a file claiming 2³²
//! entries in `stsc` aborts the whole process with an allocation failure (found by fuzzing,
//! docs/reliability.md) — something `catch_unwind` cannot stop. Here each table's count must fit
//! in the bytes its box really holds.

/// Boxes that hold other boxes on the way to the sample tables.
const CONTAINERS: [&[u8; 4]; 10] = [
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"mvex", b"moof", b"traf",
];

/// True when `bytes` start like an ISO base-media file (what symphonia's MP4 reader claims).
pub fn is_mp4(bytes: &[u8]) -> bool {
    bytes.get(4..8) == Some(b"ftyp")
}

/// `Err` naming the first sample table whose entry count does not fit in its box.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    walk(bytes, 0)
}

fn be32(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as u64)
}

fn walk(mut bytes: &[u8], depth: usize) -> Result<(), String> {
    if depth > 16 {
        return Err("MP4 boxes are nested too deeply; the file is corrupt".into());
    }
    while bytes.len() >= 8 {
        let Some(size32) = be32(bytes, 0) else { break };
        let kind = &bytes[4..8];
        let (header, size) = match size32 {
            0 => (8, bytes.len() as u64),
            1 => {
                let Some(s) = bytes.get(8..16) else { break };
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                (16, u64::from_be_bytes(a))
            }
            s => (8, s),
        };
        // Boxes that run past the end are cut to what is there (symphonia stops reading there).
        let end = (size.max(header as u64)).min(bytes.len() as u64) as usize;
        let body = &bytes[header.min(end)..end];
        if CONTAINERS.iter().any(|c| c.as_slice() == kind) {
            walk(body, depth + 1)?;
        } else {
            check_table(kind, body)?;
        }
        if end == 0 {
            break;
        }
        bytes = &bytes[end..];
    }
    Ok(())
}

/// A full box's table: `(count offset, bytes per entry, fixed bytes before the entries)`.
fn check_table(kind: &[u8], body: &[u8]) -> Result<(), String> {
    let (count_at, entry, fixed) = match kind {
        b"stco" | b"stss" => (4, 4, 8),
        b"co64" | b"stts" | b"ctts" => (4, 8, 8),
        b"stsc" => (4, 12, 8),
        b"stsz" => {
            // A non-zero sample size means no per-sample table follows.
            if be32(body, 4).is_some_and(|s| s != 0) {
                return Ok(());
            }
            (8, 4, 12)
        }
        _ => return Ok(()),
    };
    let Some(count) = be32(body, count_at) else {
        return Ok(()); // too short to hold a count: symphonia reports it as a read error
    };
    let needed = fixed as u64 + count * entry as u64;
    if needed > body.len() as u64 {
        return Err(format!(
            "the MP4 table `{}` claims {count} entries but its box holds {} bytes; the file is corrupt",
            String::from_utf8_lossy(kind),
            body.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn a_table_claiming_more_entries_than_its_box_holds_is_refused() {
        let ftyp = boxed(b"ftyp", b"M4A \0\0\0\0");
        let table = |count: u32| {
            let mut stsc = vec![0, 0, 0, 0];
            stsc.extend_from_slice(&count.to_be_bytes());
            stsc.extend_from_slice(&[0; 12]);
            let stbl = boxed(b"stbl", &boxed(b"stsc", &stsc));
            let moov = boxed(
                b"moov",
                &boxed(b"trak", &boxed(b"mdia", &boxed(b"minf", &stbl))),
            );
            [ftyp.clone(), moov].concat()
        };
        assert!(is_mp4(&table(1)));
        assert_eq!(check(&table(1)), Ok(()));
        let e = check(&table(0x0FFF_FFFF)).unwrap_err();
        assert!(e.contains("`stsc` claims 268435455 entries"), "{e}");
    }
}
