//! The bodies of the cargo-fuzz targets in `fuzz/` (which need nightly to run), as plain
//! functions: stable Rust compiles them here and the unit tests below run them over the
//! committed seed corpus (`fuzz/corpus/<target>/`) and thousands of mutations of it.
//!
//! Each body returns a [`Failure`] instead of panicking when a property breaks; the fuzz
//! targets turn that into a crash for libFuzzer.

use bytes::Bytes;
use store_api::limits::{MAX_ACCOUNT_PATH_LEN, MAX_ASSET_ID_LEN, check_name};
use store_api::{AccountPath, AssetId, Book, InputError, MAX_NAME_LEN, NameRule, StateSnapshot};

use crate::{Failure, ensure};

/// `StateSnapshot::from_bytes` on arbitrary bytes: never panics; what it accepts is
/// canonical (encodes back to exactly the same bytes), sorted, unique and within limits.
pub fn snapshot_decode(data: &[u8]) -> Result<(), Failure> {
    let Ok(snapshot) = StateSnapshot::from_bytes(data) else {
        return Ok(());
    };
    ensure!(
        snapshot.to_bytes() == data,
        "an accepted snapshot does not encode back to the same {} bytes",
        data.len()
    );
    let entries = snapshot.entries();
    ensure!(
        entries.windows(2).all(|w| w[0].0 < w[1].0),
        "an accepted snapshot's keys are not strictly ascending"
    );
    let rebuilt = StateSnapshot::from_entries(entries.iter().cloned())
        .map_err(|e| Failure(format!("an accepted snapshot breaks the limits: {e}")))?;
    ensure!(
        rebuilt == snapshot,
        "rebuilding an accepted snapshot changed it"
    );
    Ok(())
}

/// The naming rules, stated independently of `check_name`: the first rule `name` breaks.
pub fn expected_rule(name: &str, max: usize) -> Option<NameRule> {
    if name.is_empty() {
        Some(NameRule::Empty)
    } else if name.len() > max {
        Some(NameRule::TooLong {
            len: name.len(),
            max,
        })
    } else if name == "." || name == ".." {
        Some(NameRule::DotName)
    } else {
        name.chars()
            .find(|c| matches!(c, '/' | '\\') || c.is_control())
            .map(NameRule::ForbiddenChar)
    }
}

fn rule_of(result: Result<(), InputError>) -> Result<Option<NameRule>, Failure> {
    match result {
        Ok(()) => Ok(None),
        Err(InputError::InvalidName { rule, .. }) => Ok(Some(rule)),
        Err(other) => Err(Failure(format!("a name check gave {other:?}"))),
    }
}

/// Name validation on arbitrary bytes (as UTF-8, lossily): `check_name`, `Book::new`,
/// `AssetId::new` and `AccountPath::new` agree with [`expected_rule`], and a valid name can
/// neither leave a directory nor carry a NUL.
pub fn name_validation(data: &[u8]) -> Result<(), Failure> {
    let name = String::from_utf8_lossy(data);
    let name = name.as_ref();
    for (kind, max) in [
        ("book", MAX_NAME_LEN),
        ("asset", MAX_ASSET_ID_LEN),
        ("account path", MAX_ACCOUNT_PATH_LEN),
    ] {
        let expected = expected_rule(name, max);
        let got = rule_of(check_name(kind, name, max))?;
        ensure!(
            got == expected,
            "check_name({name:?}, {max}) gave {got:?}, expected {expected:?}"
        );
        let constructed = match kind {
            "book" => rule_of(Book::new(name).map(|_| ()))?,
            "asset" => rule_of(AssetId::new(name).map(|_| ()))?,
            _ => rule_of(AccountPath::new(name).map(|_| ()))?,
        };
        ensure!(
            constructed == expected,
            "the {kind} constructor disagrees with check_name on {name:?}"
        );
        if expected.is_none() {
            ensure!(
                !name.contains(['/', '\\', '\0']) && name != ".." && name != ".",
                "{name:?} was accepted as a {kind} but could escape a directory"
            );
        }
    }
    if let Ok(book) = Book::new(name) {
        ensure!(
            book.as_str() == name && book.is_reserved() == name.starts_with('_'),
            "Book::new({name:?}) changed the name or misjudged its reservation"
        );
    }
    Ok(())
}

/// A snapshot of `n` entries, for seeds.
pub fn sample_snapshot(n: usize) -> Vec<u8> {
    StateSnapshot::from_entries((0..n).map(|i| {
        (
            Bytes::from(format!("key-{i}").into_bytes()),
            Bytes::from(vec![i as u8; i % 4]),
        )
    }))
    .map(|s| s.to_bytes())
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::rng::Rng;

    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target);
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        assert!(seeds.len() >= 5, "the {target} corpus holds too few seeds");
        seeds.sort();
        seeds
    }

    /// Seeds plus deterministic mutations: bit flips, cuts, insertions, splices.
    fn mutations(seeds: &[Vec<u8>], count: usize) -> Vec<Vec<u8>> {
        let mut rng = Rng::new(0xF022);
        let mut out = seeds.to_vec();
        while out.len() < count {
            let mut m = seeds[rng.below(seeds.len() as u64) as usize].clone();
            for _ in 0..rng.between(1, 4) {
                let len = m.len() as u64;
                match rng.below(5) {
                    0 if len > 0 => {
                        let i = rng.below(len) as usize;
                        m[i] ^= 1 << rng.below(8);
                    }
                    1 => m.truncate(rng.below(len + 1) as usize),
                    2 => {
                        let i = rng.below(len + 1) as usize;
                        m.insert(i, rng.below(256) as u8);
                    }
                    3 if len > 0 => {
                        let i = rng.below(len) as usize;
                        m[i] = [0, 0xFF, b'/', b'.', b'_', b'\\', 0x7F][rng.below(7) as usize];
                    }
                    _ => {
                        let other = &seeds[rng.below(seeds.len() as u64) as usize];
                        m.extend_from_slice(&other[..other.len() / 2]);
                    }
                }
            }
            out.push(m);
        }
        out
    }

    #[test]
    fn snapshot_decode_holds_on_the_corpus_and_its_mutations() {
        let seeds = corpus("snapshot_decode");
        let inputs = mutations(&seeds, 20_000);
        let mut accepted = 0;
        for input in &inputs {
            snapshot_decode(input).unwrap_or_else(|f| panic!("{input:?}: {f}"));
            accepted += usize::from(StateSnapshot::from_bytes(input).is_ok());
        }
        assert!(
            accepted >= seeds.len() / 2,
            "the corpus should hold valid snapshots"
        );
        assert!(accepted < inputs.len(), "mutations should be rejected too");
    }

    #[test]
    fn name_validation_holds_on_the_corpus_and_its_mutations() {
        let seeds = corpus("name_validation");
        for input in mutations(&seeds, 20_000) {
            name_validation(&input).unwrap_or_else(|f| panic!("{input:?}: {f}"));
        }
    }

    #[test]
    fn the_oracle_knows_each_rule() {
        assert_eq!(expected_rule("", 255), Some(NameRule::Empty));
        assert_eq!(expected_rule("..", 255), Some(NameRule::DotName));
        assert_eq!(
            expected_rule("a/b", 255),
            Some(NameRule::ForbiddenChar('/'))
        );
        assert_eq!(expected_rule("x'; DROP TABLE t; --", 255), None);
        assert_eq!(
            expected_rule("abc", 2),
            Some(NameRule::TooLong { len: 3, max: 2 })
        );
    }
}
