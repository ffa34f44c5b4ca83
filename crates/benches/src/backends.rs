//! The enabled backends, in one place, and the fixture every benchmark opens them with.
//!
//! A backend joins every criterion group and the report with one line in
//! [`for_each_backend`], behind its Cargo feature (all on by default; narrow a run with
//! `--no-default-features --features redb,lmdb`; PostgreSQL,
//! off by default, needs a server: see the `postgres` feature).

use std::borrow::Borrow;
use std::path::Path;

use store_api::{Backend, Durability, LocationBuf, OpenOptions};
use tempfile::TempDir;

use crate::error::{BenchError, Context};
use crate::raw::RawOpener;

/// Something done once per enabled backend, generically.
pub trait BackendVisitor {
    /// Called with each enabled backend `B`, and the opener of the raw engine beneath it
    /// (`None` for the in-memory backend, which has no engine of its own).
    fn with_backend<B: Backend>(&mut self, raw: Option<RawOpener>) -> Result<(), BenchError>;
}

/// Calls `visitor` once per enabled backend, in a fixed order; stops at the first error.
pub fn for_each_backend<V: BackendVisitor>(visitor: &mut V) -> Result<(), BenchError> {
    #[cfg(feature = "mem")]
    visitor.with_backend::<store_mem::MemBackend>(None)?;
    #[cfg(feature = "redb")]
    visitor.with_backend::<store_redb::RedbBackend>(Some(crate::raw::redb::open))?;
    #[cfg(feature = "lmdb")]
    visitor.with_backend::<store_lmdb::LmdbBackend>(Some(crate::raw::lmdb::open))?;
    #[cfg(feature = "sled")]
    visitor.with_backend::<store_sled::SledBackend>(Some(crate::raw::sled::open))?;
    #[cfg(feature = "fjall")]
    visitor.with_backend::<store_fjall::FjallBackend>(Some(crate::raw::fjall::open))?;
    #[cfg(feature = "sqlite")]
    visitor.with_backend::<store_sqlite::SqliteBackend>(Some(crate::raw::sqlite::open))?;
    #[cfg(feature = "postgres")]
    visitor.with_backend::<store::postgres::PostgresBackend>(Some(crate::raw::postgres::open))?;
    let _ = &visitor;
    Ok(())
}

/// The names of the enabled backends, in [`for_each_backend`] order.
pub fn enabled() -> Vec<&'static str> {
    struct Names(Vec<&'static str>);
    impl BackendVisitor for Names {
        fn with_backend<B: Backend>(&mut self, _: Option<RawOpener>) -> Result<(), BenchError> {
            self.0.push(B::NAME);
            Ok(())
        }
    }
    let mut names = Names(Vec::new());
    // Collecting names never fails.
    let _ = for_each_backend(&mut names);
    names.0
}

/// A backend opened on its own fresh location ([`Backend::scratch_location`] of a
/// temporary directory, removed when the fixture drops).
pub struct Fixture<B: Backend> {
    backend: B,
    dir: TempDir,
}

/// A fresh temporary directory and the scratch location of backend `B` in it.
fn scratch<B: Backend>() -> Result<(TempDir, LocationBuf<B>), BenchError> {
    let dir = temp_dir(B::NAME)?;
    let location = B::scratch_location(dir.path()).context("making a scratch location")?;
    Ok((dir, location))
}

impl<B: Backend> Fixture<B> {
    /// A fresh backend opened with `options`.
    pub fn open(options: OpenOptions) -> Result<Self, BenchError> {
        let (dir, location) = scratch::<B>()?;
        let backend = B::open(location.borrow(), options).context("opening the backend")?;
        Ok(Fixture { backend, dir })
    }

    /// A fresh backend opened with `options` after `load` wrote its dataset.
    ///
    /// On a persistent backend the load runs with [`Durability::Relaxed`] and the backend
    /// is then reopened with `options`, so loading never waits for one fsync per batch;
    /// the measured backend is exactly what a user opening the directory gets.
    pub fn loaded(
        options: OpenOptions,
        load: impl FnOnce(&B) -> Result<(), BenchError>,
    ) -> Result<Self, BenchError> {
        if !B::capabilities().persistent || options.durability == Durability::Relaxed {
            let fixture = Self::open(options)?;
            load(&fixture.backend)?;
            return Ok(fixture);
        }
        let (dir, location) = scratch::<B>()?;
        let loader = B::open(
            location.borrow(),
            options.clone().durability(Durability::Relaxed),
        )
        .context("opening the backend to load it")?;
        load(&loader)?;
        drop(loader);
        let backend =
            B::open(location.borrow(), options).context("reopening the loaded backend")?;
        Ok(Fixture { backend, dir })
    }

    /// The open backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The temporary directory of the fixture (where an embedded backend lives).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A fresh temporary directory named after `what`.
pub fn temp_dir(what: &str) -> Result<TempDir, BenchError> {
    tempfile::Builder::new()
        .prefix(&format!("benches-{what}-"))
        .tempdir()
        .context("creating a temporary directory")
}

/// Default options with `durability`.
pub fn options(durability: Durability) -> OpenOptions {
    OpenOptions::default().durability(durability)
}

/// The word the report uses for a durability mode.
pub fn durability_word(durability: Durability) -> &'static str {
    match durability {
        Durability::Immediate => "durable",
        Durability::Relaxed => "relaxed",
    }
}
