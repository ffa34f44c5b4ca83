//! The one definition of the crate's 128-bit, time-ordered ids ([`TxId`](crate::TxId),
//! [`SessionId`](crate::SessionId), [`SegmentId`](crate::SegmentId)): a UUID newtype with
//! the same constructors, text form (`Display` and `FromStr` round-trip) and conversions
//! (`uuid::Uuid`, `u128`) for each.

/// Defines a UUID newtype: `uuid_id!(/// docs
/// Name, "what it is, for parse errors");`.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(
            Clone,
            Copy,
            PartialEq,
            Eq,
            PartialOrd,
            Ord,
            Hash,
            serde::Serialize,
            serde::Deserialize,
        )]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A fresh time-ordered (UUID v7) id: later ids sort after earlier ones.
            ///
            #[doc = concat!("```\n# use store_api::", stringify!($name), ";\n",
                "let id = ", stringify!($name), "::new_v7();\n",
                "assert_eq!(id.to_string().parse::<", stringify!($name), ">()?, id);\n",
                "assert_eq!(", stringify!($name), "::from_bytes(id.to_bytes()), id);\n",
                "# Ok::<(), Box<dyn std::error::Error>>(())\n```")]
            pub fn new_v7() -> Self {
                $name(uuid::Uuid::now_v7())
            }

            /// The id's 16 bytes, big-endian: their byte order is the id order.
            pub fn to_bytes(self) -> [u8; 16] {
                self.0.into_bytes()
            }

            /// The id of 16 big-endian bytes.
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                $name(uuid::Uuid::from_bytes(bytes))
            }

            /// The id of a 128-bit number (handy in tests).
            ///
            #[doc = concat!("```\n# use store_api::", stringify!($name), ";\n",
                "let one = ", stringify!($name), "::from_u128(1);\n",
                "let two = ", stringify!($name), "::from_u128(2);\n",
                "assert!(one < two); // ids order as their numbers do\n",
                "assert_eq!(u128::from(two), 2);\n",
                "assert_eq!(one.to_string(), \"00000000-0000-0000-0000-000000000001\");\n```")]
            pub fn from_u128(n: u128) -> Self {
                $name(uuid::Uuid::from_u128(n))
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        /// The hyphenated UUID, e.g. `01890a5d-ac96-774b-bcce-b302099a8057`; `FromStr` reads
        /// it back.
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, f)
            }
        }

        /// Reads a UUID in any form the `uuid` crate knows (hyphenated, as `Display`
        /// writes it, simple, braced or URN); anything else is a
        /// [`ParseError`](crate::ParseError).
        impl std::str::FromStr for $name {
            type Err = $crate::parse::ParseError;

            fn from_str(s: &str) -> Result<Self, $crate::parse::ParseError> {
                $crate::parse::uuid($what, s).map($name)
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(uuid: uuid::Uuid) -> Self {
                $name(uuid)
            }
        }

        impl From<$name> for uuid::Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        /// The id whose 128 bits, most significant first, are `n` (as
        /// [`from_u128`](Self::from_u128)).
        impl From<u128> for $name {
            fn from(n: u128) -> Self {
                $name::from_u128(n)
            }
        }

        /// The id's 128 bits as a number: ids order as their numbers do.
        impl From<$name> for u128 {
            fn from(id: $name) -> Self {
                id.0.as_u128()
            }
        }
    };
}

pub(crate) use uuid_id;
