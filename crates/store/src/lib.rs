//! Pick a storage backend with one Cargo feature, or at run time from a short URL.
//!
//! This crate re-exports the whole contract of `store-api` (the five store traits, their
//! types and errors) and every backend enabled by a feature:
//!
//! | feature | module | backend |
//! | --- | --- | --- |
//! | `mem` (default) | [`mem`] | in memory, the reference; not persistent |
//! | `redb` | `redb` | redb, pure Rust |
//! | `lmdb` | `lmdb` | LMDB through heed (builds C) |
//! | `sled` | `sled` | sled 0.34 |
//! | `fjall` | `fjall` | fjall 3, an LSM tree, pure Rust |
//! | `sqlite` | `sqlite` | SQLite through rusqlite, bundled (builds C) |
//! | `postgres` | `postgres` | a PostgreSQL server, shared by any number of instances |
//! | `all` | | all of the above |
//!
//! Features are additive: enable any set. A program written against the traits runs
//! unchanged on each; [`Stores`] opens whichever one a [`BackendConfig`] or URL names
//! (`mem:`, `redb:<dir>`, `lmdb:<dir>`, `sled:<dir>`, `fjall:<dir>`, `sqlite:<dir>`,
//! `postgres://user@host/db?schema=name`, with `?durability=relaxed` and `&cache=N`), and
//! names the feature to enable when the backend is not compiled in. The `STORE_BACKEND`
//! variable chooses the backend for [`Stores::from_env`], the examples, and
//! [`EnvBackend`], the [`Backend`] type that runs generic code (the conformance suite:
//! `STORE_BACKEND=sqlite: cargo test -p conformance`) on the backend it names.
//!
//! On docs.rs every backend module is documented, each marked with the feature that
//! enables it.
//!
//! ```
//! use swapstore::{BackendConfig, Stores};
//!
//! let stores = Stores::open_url("mem:")?;
//! let seq = stores.engine().put_batch(&[(b"user/1", b"ada")])?;
//! assert_eq!(seq, 1);
//! let mut state = stores.state_store("word-count")?;
//! state.put(b"hello", b"1")?;
//! state.flush()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`migrate`] copies every store from one backend to another and verifies the copy (the
//! `store-migrate` binary), and [`replicate`] keeps a follower on any backend up to date
//! with a leader's batch log (`store-migrate --follow`).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod any_error;
pub mod config;
pub mod env_backend;
pub mod migrate;
pub mod replicate;
pub mod stores;

pub use store_api::*;

pub use any_error::Error;
pub use config::{BackendConfig, BackendKind, STORE_BACKEND_VAR, UrlError};
pub use env_backend::EnvBackend;
pub use stores::{Stores, StoresError, open_as};

/// The in-memory backend (`store-mem`), enabled by the `mem` feature.
#[cfg(feature = "mem")]
#[cfg_attr(docsrs, doc(cfg(feature = "mem")))]
pub use store_mem as mem;

/// The redb backend (`store-redb`), enabled by the `redb` feature.
#[cfg(feature = "redb")]
#[cfg_attr(docsrs, doc(cfg(feature = "redb")))]
pub use store_redb as redb;

/// The LMDB backend (`store-lmdb`), enabled by the `lmdb` feature.
#[cfg(feature = "lmdb")]
#[cfg_attr(docsrs, doc(cfg(feature = "lmdb")))]
pub use store_lmdb as lmdb;

/// The sled backend (`store-sled`), enabled by the `sled` feature.
#[cfg(feature = "sled")]
#[cfg_attr(docsrs, doc(cfg(feature = "sled")))]
pub use store_sled as sled;

/// The fjall backend (`store-fjall`), enabled by the `fjall` feature.
#[cfg(feature = "fjall")]
#[cfg_attr(docsrs, doc(cfg(feature = "fjall")))]
pub use store_fjall as fjall;

/// The SQLite backend (`store-sqlite`), enabled by the `sqlite` feature.
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store_sqlite as sqlite;

/// The PostgreSQL backend (`store-postgres`), enabled by the `postgres` feature.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store_postgres as postgres;

/// The README's Rust examples, compiled and run as doctests so they never go stale.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The workspace README's quick start (the first code a user reads), compiled and run as a
/// doctest of the facade it uses, so it never goes stale.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct WorkspaceReadmeDoctests;
