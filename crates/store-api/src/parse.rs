//! Reading ids and timestamps back from text: the one error type their `FromStr`
//! implementations share, and the parsers they are built from.
//!
//! Every type parsed here prints with `Display` in a form its `FromStr` reads back to the
//! same value (ids as their canonical text, [`Timestamp`](crate::Timestamp) as
//! microseconds), so a value written to a log, a URL or a config file can be read back.

use uuid::Uuid;

/// Text that does not spell the value it was parsed as.
///
/// The message names what was being read, repeats the text, says what is wrong with it and
/// shows what is expected, e.g. `invalid transaction id "42": invalid length: expected
/// length 32 for simple format, found 2; expected a UUID such as
/// 01890a5d-ac96-774b-bcce-b302099a8057`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: {reason}; expected {expected}")]
#[non_exhaustive]
pub struct ParseError {
    /// What was being read: "transaction id", "timestamp", ...
    pub what: &'static str,
    /// The text given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
    /// What the text should look like.
    pub expected: &'static str,
}

impl ParseError {
    /// The error for `input`, read as a `what`, which is wrong for `reason`.
    pub fn new(
        what: &'static str,
        input: &str,
        reason: impl Into<String>,
        expected: &'static str,
    ) -> Self {
        ParseError {
            what,
            input: input.to_owned(),
            reason: reason.into(),
            expected,
        }
    }
}

/// What a UUID-based id should look like.
const UUID_EXPECTED: &str = "a UUID such as 01890a5d-ac96-774b-bcce-b302099a8057";

/// Reads a UUID in any of the forms the `uuid` crate accepts (hyphenated, simple, braced,
/// URN), so that an id's `Display` (hyphenated) reads back.
pub(crate) fn uuid(what: &'static str, input: &str) -> Result<Uuid, ParseError> {
    Uuid::try_parse(input).map_err(|e| ParseError::new(what, input, e.to_string(), UUID_EXPECTED))
}

/// Reads a non-empty run of ASCII decimal digits as a `u64` (no sign, no spaces).
pub(crate) fn decimal_u64(
    what: &'static str,
    input: &str,
    digits: &str,
    expected: &'static str,
) -> Result<u64, ParseError> {
    if digits.is_empty() {
        return Err(ParseError::new(what, input, "no digits", expected));
    }
    only_digits(
        what,
        input,
        digits,
        expected,
        char::is_ascii_digit,
        "decimal",
    )?;
    digits
        .parse()
        .map_err(|_| ParseError::new(what, input, "the number is larger than u64::MAX", expected))
}

/// Reads exactly `N` bytes written as `2 * N` hexadecimal digits (either case).
pub(crate) fn hex_bytes<const N: usize>(
    what: &'static str,
    input: &str,
    digits: &str,
    expected: &'static str,
) -> Result<[u8; N], ParseError> {
    only_digits(
        what,
        input,
        digits,
        expected,
        char::is_ascii_hexdigit,
        "hexadecimal",
    )?;
    if digits.len() != 2 * N {
        return Err(ParseError::new(
            what,
            input,
            format!("{} hexadecimal digits instead of {}", digits.len(), 2 * N),
            expected,
        ));
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.as_bytes().chunks_exact(2)) {
        *byte = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
    }
    Ok(out)
}

/// Fails on the first character of `digits` that is not a digit of the `base` named.
fn only_digits(
    what: &'static str,
    input: &str,
    digits: &str,
    expected: &'static str,
    is_digit: fn(&char) -> bool,
    base: &str,
) -> Result<(), ParseError> {
    match digits.char_indices().find(|(_, c)| !is_digit(c)) {
        Some((at, c)) => Err(ParseError::new(
            what,
            input,
            format!("{c:?} at byte {at} is not a {base} digit"),
            expected,
        )),
        None => Ok(()),
    }
}

/// The value of an ASCII hexadecimal digit (the caller checked it is one).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::{Debug, Display};
    use std::str::FromStr;

    use super::*;
    use crate::{LyquidId, SegmentId, SessionId, Timestamp, TxId};

    /// `value` prints as `text` and `text` reads back to `value`.
    fn round_trip<T>(value: T, text: &str)
    where
        T: Display + FromStr<Err = ParseError> + PartialEq + Debug,
    {
        assert_eq!(value.to_string(), text);
        assert_eq!(text.parse::<T>(), Ok(value));
    }

    #[test]
    fn ids_and_timestamps_read_back_their_display() {
        let text = "01890a5d-ac96-774b-bcce-b302099a8057";
        let uuid = Uuid::try_parse(text).unwrap();
        round_trip(TxId(uuid), text);
        round_trip(SessionId(uuid), text);
        round_trip(SegmentId(uuid), text);
        for n in [0, 1, u128::MAX] {
            let id = SegmentId::from_u128(n);
            assert_eq!(id.to_string().parse::<SegmentId>(), Ok(id));
            let tx = TxId(Uuid::from_u128(n));
            assert_eq!(tx.to_string().parse::<TxId>(), Ok(tx));
        }
        let fresh = TxId::new_v7();
        assert_eq!(fresh.to_string().parse::<TxId>(), Ok(fresh));

        round_trip(Timestamp(0), "0µs");
        round_trip(Timestamp(1_700_000_000_000_000), "1700000000000000µs");
        round_trip(Timestamp(u64::MAX), "18446744073709551615µs");

        let mut bytes = [0u8; 20];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8 % 16) * 0x11;
        }
        round_trip(
            LyquidId(bytes),
            "0x00112233445566778899aabbccddeeff00112233",
        );
        round_trip(LyquidId([0xFF; 20]), &format!("0x{}", "ff".repeat(20)));
        assert_eq!(
            format!("{:?}", LyquidId(bytes)),
            "LyquidId(0x00112233445566778899aabbccddeeff00112233)"
        );
    }

    #[test]
    fn other_spellings_read_as_the_same_value() {
        let id = TxId(Uuid::from_u128(0x01890a5d_ac96_774b_bcce_b302099a8057));
        for text in [
            "01890a5dac96774bbcceb302099a8057",
            "01890A5D-AC96-774B-BCCE-B302099A8057",
            "{01890a5d-ac96-774b-bcce-b302099a8057}",
            "urn:uuid:01890a5d-ac96-774b-bcce-b302099a8057",
        ] {
            assert_eq!(text.parse::<TxId>(), Ok(id), "{text}");
        }
        for text in ["42", "42us", "42µs"] {
            assert_eq!(text.parse::<Timestamp>(), Ok(Timestamp(42)), "{text}");
        }
        let lyquid = LyquidId([0xAB; 20]);
        for text in ["ab".repeat(20), format!("0X{}", "AB".repeat(20))] {
            assert_eq!(text.parse::<LyquidId>(), Ok(lyquid), "{text}");
        }
    }

    #[test]
    fn bad_text_is_a_parse_error_naming_what_and_why() {
        fn rejected<T: FromStr<Err = ParseError> + Debug>(input: &str) -> ParseError {
            let err = input.parse::<T>().expect_err(input);
            assert_eq!(err.input, input);
            assert!(!err.reason.is_empty());
            let message = err.to_string();
            let start = format!("invalid {} {input:?}: ", err.what);
            assert!(message.starts_with(&start), "{message}");
            assert!(message.ends_with(err.expected), "{message}");
            err
        }
        for input in [
            "",
            "01890a5d-ac96-774b-bcce",
            "g1890a5dac96774bbcceb302099a8057",
        ] {
            rejected::<TxId>(input);
            rejected::<SessionId>(input);
            rejected::<SegmentId>(input);
        }
        for input in ["", "µs", "-1µs", "+1", " 1", "12ms", "18446744073709551616"] {
            rejected::<Timestamp>(input);
        }
        for input in ["", "0x", "0x00", "0xzz", "x0"] {
            rejected::<LyquidId>(input);
        }
        let err = rejected::<Timestamp>("12ms");
        assert_eq!(err.what, "timestamp");
        assert_eq!(err.reason, "'m' at byte 2 is not a decimal digit");
        let err = rejected::<LyquidId>("0x00");
        assert_eq!(err.what, "Lyquid id");
        assert_eq!(err.reason, "2 hexadecimal digits instead of 40");
        let err = rejected::<LyquidId>(&"00".repeat(21));
        assert_eq!(err.reason, "42 hexadecimal digits instead of 40");
        assert_eq!(rejected::<TxId>("x").what, "transaction id");
        assert_eq!(rejected::<SessionId>("x").what, "session id");
        assert_eq!(rejected::<SegmentId>("x").what, "segment id");
    }

    #[test]
    fn conversions_keep_the_value() {
        let uuid = Uuid::now_v7();
        assert_eq!(Uuid::from(TxId::from(uuid)), uuid);
        assert_eq!(Uuid::from(SessionId::from(uuid)), uuid);
        assert_eq!(Uuid::from(SegmentId::from(uuid)), uuid);
        let n = 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef_u128;
        assert_eq!(u128::from(SegmentId::from(n)), n);
        assert_eq!(u128::from(SessionId::from(n)), n);
        assert_eq!(u128::from(TxId::from(n)), n);
        assert_eq!(SegmentId::from(n), SegmentId::from_u128(n));
        assert!(SegmentId::from(1u128) < SegmentId::from(2u128));
        assert_eq!(u64::from(Timestamp::from(42u64)), 42);
        assert_eq!(Timestamp::from(42u64), Timestamp::from_micros(42));
        assert_eq!(<[u8; 20]>::from(LyquidId::from([7u8; 20])), [7u8; 20]);
    }

    #[test]
    fn hex_reads_both_cases_and_rejects_the_rest() {
        assert_eq!(hex_bytes::<2>("x", "aB0f", "aB0f", "e"), Ok([0xAB, 0x0F]));
        let err = hex_bytes::<2>("x", "ab0", "ab0", "e").unwrap_err();
        assert_eq!(err.reason, "3 hexadecimal digits instead of 4");
        let err = hex_bytes::<2>("x", "abzf", "abzf", "e").unwrap_err();
        assert_eq!(err.reason, "'z' at byte 2 is not a hexadecimal digit");
        let err = hex_bytes::<1>("x", "éa", "éa", "e").unwrap_err();
        assert_eq!(err.reason, "'é' at byte 0 is not a hexadecimal digit");
    }

    #[test]
    fn decimals_are_plain_digits() {
        assert_eq!(decimal_u64("x", "7", "7", "e"), Ok(7));
        for bad in ["", "+7", "-7", " 7", "7 ", "0x7", "18446744073709551616"] {
            assert!(decimal_u64("x", bad, bad, "e").is_err(), "{bad:?}");
        }
        assert_eq!(
            decimal_u64("x", "18446744073709551615", "18446744073709551615", "e"),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn the_message_says_what_where_and_how() {
        let err = uuid("transaction id", "42").unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("invalid transaction id \"42\": "),
            "{message}"
        );
        assert!(message.ends_with(UUID_EXPECTED), "{message}");
        assert_eq!(err.what, "transaction id");
    }
}
