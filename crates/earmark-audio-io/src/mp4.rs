//! A guard in front of symphonia's MP4 reader. Its sample tables (`stts`,
//! `ctts`, `stsc`, `stsz`, `stz2`, `stco`, `co64`, `stss`) allocate as many
//! entries as the table's count field says before reading them; fuzzing the
//! audio front found an `stsc` claiming 4,066,322,942 entries in a 28-byte
//! box, and the 65 GB allocation aborted the process. Every table's count
//! is checked against the bytes its box holds, before symphonia sees the
//! file.

use std::io::{Read, Seek, SeekFrom};

/// Boxes on the way from the top of the file to the sample tables.
const CONTAINERS: &[&[u8; 4]] = &[b"moov", b"trak", b"mdia", b"minf", b"stbl"];

/// The first sample table whose count cannot fit in its box, described;
/// `None` for a file that is not MP4 or whose tables fit.
pub(crate) fn oversized_table(file: &mut (impl Read + Seek)) -> Option<String> {
    let mut head = [0u8; 8];
    file.seek(SeekFrom::Start(0)).ok()?;
    let read = file.read(&mut head).unwrap_or(0);
    let verdict = if read == 8 && &head[4..8] == b"ftyp" {
        let end = file.seek(SeekFrom::End(0)).ok()?;
        walk(file, 0, end, 0)
    } else {
        None
    };
    let _ = file.seek(SeekFrom::Start(0));
    verdict
}

fn walk(file: &mut (impl Read + Seek), start: u64, end: u64, depth: usize) -> Option<String> {
    let mut at = start;
    while at + 8 <= end && depth < 8 {
        let mut header = [0u8; 16];
        file.seek(SeekFrom::Start(at)).ok()?;
        file.read_exact(&mut header[..8]).ok()?;
        let kind: [u8; 4] = header[4..8].try_into().expect("4 bytes");
        let (size, header_len) = match u32::from_be_bytes(header[..4].try_into().expect("4")) {
            0 => (end - at, 8),
            1 => {
                file.read_exact(&mut header[8..16]).ok()?;
                (u64::from_be_bytes(header[8..16].try_into().expect("8")), 16)
            }
            n => (n as u64, 8),
        };
        if size < header_len {
            // symphonia reports a box shorter than its own header.
            return None;
        }
        // A box that claims more than its parent or the file holds is still
        // read by symphonia, as far as the bytes go: so are its tables,
        // which must fit in what is there.
        let body = at + header_len..at.saturating_add(size).min(end);
        if CONTAINERS.contains(&&kind) {
            if let Some(problem) = walk(file, body.start, body.end, depth + 1) {
                return Some(problem);
            }
        } else if let Some(problem) = check_table(file, &kind, body.start, body.end - body.start) {
            return Some(problem);
        }
        at = at.saturating_add(size);
    }
    None
}

/// Checks one sample table whose body (after the box header) starts at
/// `body` and holds `len` bytes.
fn check_table(
    file: &mut (impl Read + Seek),
    kind: &[u8; 4],
    body: u64,
    len: u64,
) -> Option<String> {
    // (bytes before the entries, after version and flags; bytes per entry)
    let (fields, entry): (u64, u64) = match kind {
        b"stts" | b"ctts" => (4, 8),
        b"stsc" => (4, 12),
        b"stco" | b"stss" => (4, 4),
        b"co64" => (4, 8),
        b"stsz" | b"stz2" => (8, 0),
        _ => return None,
    };
    let mut bytes = [0u8; 12];
    let wanted = (4 + fields) as usize;
    file.seek(SeekFrom::Start(body)).ok()?;
    file.read_exact(&mut bytes[..wanted]).ok()?;
    let word = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().expect("4")) as u64;
    let (count, need) = match kind {
        b"stsz" => {
            let count = word(8);
            // A constant sample size means no table follows.
            (count, if word(4) == 0 { count * 4 } else { 0 })
        }
        b"stz2" => {
            let count = word(8);
            let bits = (word(4) & 0xff).max(4);
            (count, (count * bits).div_ceil(8))
        }
        _ => {
            let count = word(4);
            (count, count * entry)
        }
    };
    let room = len.saturating_sub(4 + fields);
    (need > room).then(|| {
        format!(
            "its MP4 '{}' table claims {count} entries, {need} bytes, in a box of {len} bytes",
            String::from_utf8_lossy(kind)
        )
    })
}
