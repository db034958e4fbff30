//! Encryption at rest end to end (docs/design/encryption.md §6): two devices of one account on
//! the exported API against the real `tandem-server`. A writes documents with a distinctive value
//! and field name and attaches a file with a known marker; B pulls them, downloads the file
//! (eagerly, it is small) and reads part of it through `read_attachment`. Then every file under
//! both devices' data directories (databases, `-wal`, `-shm`, the attachment cache) is searched
//! for the value, the field name and the marker: with encryption on, none is found, while the
//! engines are open (the WAL holds the writes) and after they close; with it off the same
//! search finds each, so the check can fail.
//!
//! `attachment()` is not called: it hands the app a decrypted copy by design (documented).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::json;
use tandem::{AttachmentRef, Encryption};
use tandem_testkit::server::{email, TestServer};

mod common;

use common::{block, device_with, pair_with, Device};

const VALUE: &str = "quetzalcoatl-at-rest-distinctive-4711";
const FIELD: &str = "zanzibarAtRestField";
const MARKER: &str = "ATTACHMENT-PLAINTEXT-MARKER-0xC0FFEE";

/// What the search found: (needle, file name) pairs.
type Findings = BTreeSet<(&'static str, String)>;

fn search(root: &Path, found: &mut Findings) {
    for entry in std::fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            search(&path, found);
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue; // removed while we looked (a checkpoint's -shm, a finished .part)
        };
        for needle in [VALUE, FIELD, MARKER] {
            if bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
            {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                found.insert((needle, name));
            }
        }
    }
}

/// Puts `photos/ph1` on `device` with an attached file of `size` bytes repeating [`MARKER`];
/// returns the file's bytes.
fn photo_with_marker(device: &Device, size: usize) -> Vec<u8> {
    device.put("photos", "ph1", json!({"caption": VALUE}));
    let file: Vec<u8> = MARKER.bytes().cycle().take(size).collect();
    block(device.t.attach_bytes(
        "photos".into(),
        "ph1".into(),
        "image".into(),
        file.clone(),
        "image/png".into(),
        None,
    ))
    .unwrap();
    file
}

fn search_devices(devices: &[&Device]) -> Findings {
    let mut found = Findings::new();
    for device in devices {
        search(device.dir.path(), &mut found);
    }
    found
}

fn needles(found: &Findings) -> BTreeSet<&'static str> {
    found.iter().map(|(needle, _)| *needle).collect()
}

/// The story, with both devices' stores set to `encryption`; what the search found while the
/// engines were open and after they closed.
fn story(encryption: Encryption) -> (Findings, Findings) {
    let server = TestServer::start();
    let (a, b) = pair_with(&server, |config| config.encryption = Some(encryption));
    for i in 0..20 {
        a.put(
            "plans",
            &format!("p{i}"),
            json!({"name": format!("{VALUE} {i}"), "meta": {FIELD: i}}),
        );
    }
    let file = photo_with_marker(&a, 200_000);
    a.sync();
    b.sync();
    assert_eq!(b.count("plans"), 20);
    let reference: AttachmentRef =
        b.t.attachment_ref("photos".into(), "ph1".into(), "image".into())
            .unwrap()
            .expect("the photo's reference arrived");
    let part = block(b.t.read_attachment(reference, 100, 1_000)).unwrap();
    assert_eq!(part, file[100..1_100], "B reads the attachment's bytes");
    assert_eq!(
        a.t.encryption_status().unwrap(),
        encryption,
        "the files are what the configuration asks for"
    );

    let open = search_devices(&[&a, &b]);
    a.t.shutdown();
    b.t.shutdown();
    let closed = search_devices(&[&a, &b]);
    (open, closed)
}

#[test]
fn encrypted_devices_keep_nothing_readable_on_disk() {
    let (open, closed) = story(Encryption::On);
    assert_eq!(open, Findings::new(), "found while the engines were open");
    assert_eq!(closed, Findings::new(), "found after the engines closed");
}

#[test]
fn plaintext_devices_show_everything_the_search_looks_for() {
    let (open, closed) = story(Encryption::Off);
    let all = BTreeSet::from([VALUE, FIELD, MARKER]);
    assert_eq!(needles(&open), all, "{open:?}");
    assert_eq!(needles(&closed), all, "{closed:?}");
}

/// Data written before the first sign-in moves into the account's database, which has its own
/// key: the guest database is attached with the guest key and its cached files re-sealed.
#[test]
fn an_encrypted_guest_database_is_adopted_at_the_first_sign_in() {
    let server = TestServer::start();
    let device = device_with(server.url(), |c| c.encryption = Some(Encryption::On));
    device.put("plans", "g1", json!({"name": VALUE}));
    let file = photo_with_marker(&device, 100_000);
    let pending = device.pending();

    device.sign_up(&email());
    assert_eq!(device.pending(), pending, "the guest's changes moved");
    assert!(device.doc("plans", "g1").is_some());
    let reference = device
        .t
        .attachment_ref("photos".into(), "ph1".into(), "image".into())
        .unwrap()
        .unwrap();
    assert_eq!(
        block(device.t.read_attachment(reference, 0, 100_000)).unwrap(),
        file,
        "the guest's file opens under the account's key"
    );
    device.sync();
    assert_eq!(device.pending(), 0);
    device.t.shutdown();
    let mut found = Findings::new();
    search(device.dir.path(), &mut found);
    assert_eq!(found, Findings::new());
}
