//! Short content keys: the first bytes of a SHA-256 digest, in hex. Bases,
//! checkpoints and the status store name what they keep by them.

use sha2::{Digest, Sha256};

/// The first `bytes` bytes of `hasher`'s digest, as `2 * bytes` hex digits.
pub fn short_hex(hasher: Sha256, bytes: usize) -> String {
    hasher
        .finalize()
        .iter()
        .take(bytes)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_key_is_the_digests_first_bytes_in_hex() {
        let mut hasher = Sha256::new();
        hasher.update("abc");
        // SHA-256("abc") = ba7816bf 8f01cfea ...
        assert_eq!(short_hex(hasher, 6), "ba7816bf8f01");
    }
}
