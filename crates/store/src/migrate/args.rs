//! The command line of `store-migrate`, parsed here so it is tested with the library.

use store_api::{Book, InputError, LyquidId};

use super::Plan;
use crate::config::{BackendConfig, UrlError};

/// The usage text of `store-migrate`.
pub const USAGE: &str = "\
usage: store-migrate <from-url> <to-url> [--partition NAME]... [--book NAME]... [--callee HEX]...

Copies every store from one backend to another (which must be empty), reopens the
destination and verifies it store by store. Exits 0 when the copy matches, 1 on any
difference or failure, 2 on a usage error.

URLs: mem: | redb:<dir> | lmdb:<dir> | sled:<dir> | sqlite:<dir>
      | postgres://user@host:5432/db?schema=NAME[&pool=N]
      options ?durability=relaxed&cache=N
--partition NAME  a state partition to copy (partitions cannot be listed); repeatable
--book NAME       a ledger book to copy besides _system (books cannot be listed); repeatable
--callee HEX      a Lyquid id (40 hex digits) whose inbound call queue to copy; repeatable

Not migratable through the API: side-effect output slots and inter-call outputs (they
cannot be enumerated), segments holding only trace entries (they are not listed).";

/// A parsed `store-migrate` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Print [`USAGE`].
    Help,
    /// Migrate `from` into `to` following `plan`.
    Migrate {
        /// The source.
        from: BackendConfig,
        /// The destination.
        to: BackendConfig,
        /// What to copy beyond what the stores enumerate.
        plan: Plan,
    },
}

/// Why a `store-migrate` command line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgsError {
    /// Not exactly two URLs were given.
    #[error("expected a source and a destination URL, got {0} URLs")]
    UrlCount(usize),
    /// A URL did not parse.
    #[error("{url}: {source}")]
    Url {
        /// The URL as given.
        url: String,
        /// Why.
        #[source]
        source: UrlError,
    },
    /// An option needs a value and got none.
    #[error("{0} needs a value")]
    MissingValue(String),
    /// An option is not known.
    #[error("unknown option {0}")]
    UnknownOption(String),
    /// A partition or book name breaks the naming rules.
    #[error("{0}")]
    Name(#[from] InputError),
    /// A callee id is not 40 hex digits.
    #[error("callee {0:?} is not a Lyquid id of 40 hex digits")]
    Callee(String),
}

/// Parses the arguments after the program name.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, ArgsError> {
    let mut urls = Vec::new();
    let mut plan = Plan::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        if !arg.starts_with("--") {
            urls.push(arg);
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        if !matches!(flag.as_str(), "--partition" | "--book" | "--callee") {
            return Err(ArgsError::UnknownOption(arg));
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| ArgsError::MissingValue(flag.clone()))?;
        match flag.as_str() {
            "--partition" => {
                store_api::limits::check_partition_name(&value)?;
                if !plan.partitions.contains(&value) {
                    plan.partitions.push(value);
                }
            }
            "--book" => {
                let book = Book::new(value)?;
                if !plan.books.contains(&book) {
                    plan.books.push(book);
                }
            }
            _ => {
                let callee = parse_lyquid(&value).ok_or(ArgsError::Callee(value))?;
                if !plan.callees.contains(&callee) {
                    plan.callees.push(callee);
                }
            }
        }
    }
    let [from, to] = <[String; 2]>::try_from(urls).map_err(|u| ArgsError::UrlCount(u.len()))?;
    let parse = |url: String| {
        url.parse::<BackendConfig>()
            .map_err(|source| ArgsError::Url { url, source })
    };
    Ok(Command::Migrate {
        from: parse(from)?,
        to: parse(to)?,
        plan,
    })
}

/// A Lyquid id from 40 hex digits, with or without a `0x` prefix.
pub fn parse_lyquid(text: &str) -> Option<LyquidId> {
    let hex = text.strip_prefix("0x").unwrap_or(text).as_bytes();
    if hex.len() != 40 {
        return None;
    }
    let mut id = [0u8; 20];
    for (byte, pair) in id.iter_mut().zip(hex.chunks_exact(2)) {
        let digits = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(LyquidId(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_urls_and_repeatable_options() {
        let parsed = parse_args(args(&[
            "sled:/a",
            "--partition",
            "p1",
            "redb:/b?durability=relaxed",
            "--book=shop",
            "--callee",
            "0x0102030405060708090a0b0c0d0e0f1011121314",
            "--partition=p2",
            "--partition=p1",
        ]))
        .unwrap();
        let Command::Migrate { from, to, plan } = parsed else {
            panic!("expected a migration, got {parsed:?}");
        };
        assert_eq!(from.to_string(), "sled:/a");
        assert_eq!(to.to_string(), "redb:/b?durability=relaxed");
        assert_eq!(plan.partitions, ["p1", "p2"]);
        assert_eq!(plan.books, [Book::new("shop").unwrap()]);
        let mut expected = [0u8; 20];
        for (i, b) in expected.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        assert_eq!(plan.callees, [LyquidId(expected)]);
        assert_eq!(parse_args(args(&["--help"])).unwrap(), Command::Help);
    }

    #[test]
    fn rejects_bad_command_lines() {
        assert_eq!(
            parse_args(args(&["mem:"])).unwrap_err(),
            ArgsError::UrlCount(1)
        );
        assert_eq!(
            parse_args(args(&["mem:", "mem:", "mem:"])).unwrap_err(),
            ArgsError::UrlCount(3)
        );
        assert!(matches!(
            parse_args(args(&["mem:", "rocks:/x"])).unwrap_err(),
            ArgsError::Url { .. }
        ));
        assert_eq!(
            parse_args(args(&["mem:", "mem:", "--book"])).unwrap_err(),
            ArgsError::MissingValue("--book".into())
        );
        assert_eq!(
            parse_args(args(&["mem:", "mem:", "--all"])).unwrap_err(),
            ArgsError::UnknownOption("--all".into())
        );
        assert!(matches!(
            parse_args(args(&["mem:", "mem:", "--partition", "../x"])).unwrap_err(),
            ArgsError::Name(_)
        ));
        assert!(matches!(
            parse_args(args(&["mem:", "mem:", "--callee", "zz"])).unwrap_err(),
            ArgsError::Callee(_)
        ));
        assert_eq!(parse_lyquid(&"g".repeat(40)), None);
        assert_eq!(parse_lyquid(&"0".repeat(40)), Some(LyquidId([0; 20])));
    }
}
