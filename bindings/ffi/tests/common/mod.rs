//! The device harness the end-to-end tests share (`mod common;` in each): engines opened on a
//! temporary folder against a `TestServer`, signed in to one account, with blocking helpers for
//! the async calls and short names for the calls the tests repeat. A test file adds what only it
//! needs as an `impl Device` block of its own.
//!
//! Every test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;
use tandem::{Query, Record, SecureStore, SyncReport, Tandem, TandemConfig, TandemError, WriteOp};
use tandem_testkit::fixtures::{MemorySecrets, TEST_SCHEMA};
use tandem_testkit::server::{email, TestServer};
use tempfile::TempDir;

/// The password of every test account.
pub const PASSWORD: &str = "correct horse battery staple";

/// Runs `future` to its end on the engine's runtime.
pub fn block<F: Future>(future: F) -> F::Output {
    tandem::runtime::runtime().block_on(future)
}

/// The secure store the devices keep their session in.
pub type Secrets = MemorySecrets;

/// One device: its folder, its secure store and its engine.
pub struct Device {
    pub dir: TempDir,
    pub secrets: Arc<Secrets>,
    pub t: Arc<Tandem>,
}

/// The configuration of a device in `dir` against `url`: the test schema, realtime off (tests
/// sync by hand), sessions in `secrets`; `adjust` changes the rest.
pub fn config(
    dir: &TempDir,
    url: &str,
    secrets: &Arc<Secrets>,
    adjust: impl FnOnce(&mut TandemConfig),
) -> TandemConfig {
    let mut config = TandemConfig::with_server(dir.path().to_string_lossy(), TEST_SCHEMA, url);
    config.sync.realtime = false;
    config.secure_store = Some(Arc::clone(secrets) as Arc<dyn SecureStore>);
    adjust(&mut config);
    config
}

/// Opens the engine of [`config`].
pub fn open(
    dir: &TempDir,
    url: &str,
    secrets: &Arc<Secrets>,
    adjust: impl FnOnce(&mut TandemConfig),
) -> Arc<Tandem> {
    Tandem::open(config(dir, url, secrets, adjust)).unwrap()
}

/// A new device against `url`, signed in to nothing.
pub fn device(url: &str) -> Device {
    device_with(url, |_| {})
}

/// [`device`] with its configuration adjusted.
pub fn device_with(url: &str, adjust: impl FnOnce(&mut TandemConfig)) -> Device {
    device_opened_by(url, adjust, |config| Tandem::open(config).unwrap())
}

/// [`device_with`] whose engine `open` opens from its configuration (on a clock of the test's,
/// say).
pub fn device_opened_by(
    url: &str,
    adjust: impl FnOnce(&mut TandemConfig),
    open: impl FnOnce(TandemConfig) -> Arc<Tandem>,
) -> Device {
    let dir = TempDir::new().unwrap();
    let secrets = Arc::new(Secrets::default());
    let t = open(config(&dir, url, &secrets, adjust));
    Device { dir, secrets, t }
}

/// Signs the first of `devices` up to a new account and the others in to it.
pub fn one_account(devices: &[Device]) {
    let account = email();
    devices[0].sign_up(&account);
    for d in &devices[1..] {
        d.sign_in(&account);
    }
}

/// `n` devices signed in to one new account.
pub fn devices(server: &TestServer, n: usize) -> Vec<Device> {
    devices_with(server.url(), n, |_| {})
}

/// [`devices`] against `url` (a server or a proxy), each configuration adjusted.
pub fn devices_with(url: &str, n: usize, adjust: impl Fn(&mut TandemConfig)) -> Vec<Device> {
    let all: Vec<Device> = (0..n).map(|_| device_with(url, &adjust)).collect();
    one_account(&all);
    all
}

/// Two devices signed in to one new account.
pub fn pair(server: &TestServer) -> (Device, Device) {
    pair_with(server, |_| {})
}

/// [`pair`] with each configuration adjusted.
pub fn pair_with(server: &TestServer, adjust: impl Fn(&mut TandemConfig)) -> (Device, Device) {
    let mut all = devices_with(server.url(), 2, adjust);
    let b = all.pop().unwrap();
    let a = all.pop().unwrap();
    (a, b)
}

/// A put of `doc` as `collection/id`, for [`Device::write`].
pub fn put_op(collection: &str, id: &str, doc: Value) -> WriteOp {
    WriteOp::Put {
        collection: collection.into(),
        id: Some(id.into()),
        json: doc.to_string(),
        space_id: None,
    }
}

impl Device {
    pub fn sign_up(&self, email: &str) {
        block(self.t.sign_up(email.into(), PASSWORD.into())).unwrap();
    }

    pub fn sign_in(&self, email: &str) {
        block(self.t.sign_in(email.into(), PASSWORD.into())).unwrap();
    }

    /// Syncs once; the run must succeed.
    pub fn sync(&self) -> SyncReport {
        block(self.t.sync_now()).unwrap()
    }

    /// Syncs once; the run may fail.
    pub fn try_sync(&self) -> Result<SyncReport, TandemError> {
        block(self.t.sync_now())
    }

    /// Writes a put; returns the record as written.
    pub fn put(&self, collection: &str, id: &str, doc: Value) -> Record {
        self.t
            .put(collection.into(), Some(id.into()), doc.to_string())
            .unwrap()
    }

    /// Writes a patch; returns the record as written.
    pub fn patch(&self, collection: &str, id: &str, patch: Value) -> Record {
        self.t
            .patch(collection.into(), id.into(), patch.to_string())
            .unwrap()
    }

    pub fn delete(&self, collection: &str, id: &str) {
        self.t.delete(collection.into(), id.into()).unwrap();
    }

    /// Writes `ops` as one batch.
    pub fn write(&self, ops: Vec<WriteOp>) {
        self.t.write(ops).unwrap();
    }

    /// The live record, if there is one.
    pub fn get(&self, collection: &str, id: &str) -> Option<Record> {
        self.t.get(collection.into(), id.into()).unwrap()
    }

    /// The live record, which must exist.
    pub fn record(&self, collection: &str, id: &str) -> Record {
        self.get(collection, id)
            .unwrap_or_else(|| panic!("no {collection}/{id}"))
    }

    /// The live document, if there is one.
    pub fn doc(&self, collection: &str, id: &str) -> Option<Value> {
        self.get(collection, id)
            .map(|r| serde_json::from_str(&r.document).unwrap())
    }

    /// How many live records `collection` holds.
    pub fn count(&self, collection: &str) -> u64 {
        self.t.count(collection.into(), Query::default()).unwrap()
    }

    /// How many changes wait to be sent.
    pub fn pending(&self) -> u64 {
        self.t.pending_count().unwrap()
    }
}
