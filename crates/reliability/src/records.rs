//! Self-checking records: values and segment entries that carry their own identity and a
//! checksum, so a reader can tell a whole record from a torn or foreign one.

/// FNV-1a over `bytes`: a cheap checksum, enough to tell a torn record from a whole one.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

const MAGIC: &[u8; 2] = b"RR";

/// Encodes a record of `writer`, number `n`, with `pad` filler bytes (which may include
/// newlines and zeros), followed by a checksum of everything before it.
pub fn encode(writer: u32, n: u64, pad: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 4 + 8 + 4 + pad + 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&writer.to_be_bytes());
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(&(pad as u32).to_be_bytes());
    out.extend((0..pad).map(|i| [b'\n', 0, b'x', 0xFF][i % 4]));
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_be_bytes());
    out
}

/// Decodes a record written by [`encode`]: `(writer, n)`, or `None` when the bytes are not
/// exactly one whole record.
pub fn decode(bytes: &[u8]) -> Option<(u32, u64)> {
    if bytes.len() < 2 + 4 + 8 + 4 + 8 || &bytes[..2] != MAGIC {
        return None;
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    if checksum(body).to_be_bytes() != sum {
        return None;
    }
    let writer = u32::from_be_bytes(body[2..6].try_into().ok()?);
    let n = u64::from_be_bytes(body[6..14].try_into().ok()?);
    let pad = u32::from_be_bytes(body[14..18].try_into().ok()?) as usize;
    (body.len() == 18 + pad).then_some((writer, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_records_decode_and_torn_ones_do_not() {
        let rec = encode(7, 42, 9);
        assert_eq!(decode(&rec), Some((7, 42)));
        for cut in 0..rec.len() {
            assert_eq!(decode(&rec[..cut]), None, "cut at {cut}");
        }
        let mut joined = rec.clone();
        joined.extend_from_slice(&encode(7, 43, 0));
        assert_eq!(decode(&joined), None);
        let mut flipped = rec;
        flipped[10] ^= 1;
        assert_eq!(decode(&flipped), None);
    }
}
