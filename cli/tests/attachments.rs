//! `tandem attach` and `tandem attachment` against an in-process server: a file attached on one
//! device comes out byte for byte on another, `status` counts what waits to go up, and a device
//! killed mid-upload (crash point `upload_chunk_sent`) resumes on its next sync without sending
//! the file twice (the fault proxy counts the chunks' body bytes).

mod common;

use common::{email, run, Device, Server};
use serde_json::json;
use tandem_testkit::proxy::Proxy;

/// The server's chunk size.
const CHUNK: u64 = 8 * 1024 * 1024;

/// `size` bytes that do not compress.
fn bytes(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A plan `legs` with a day `d1`, the record the stories attach to (the sample schema's
/// `plan_days.photo`).
fn day(device: &Device) {
    device.json(&["put", "plans", r#"{"name": "Legs"}"#, "--id", "legs"]);
    device.json(&[
        "put",
        "plan_days",
        r#"{"planId": "legs", "dayIndex": 0, "title": "Squats"}"#,
        "--id",
        "d1",
    ]);
}

#[test]
fn a_file_attached_on_one_device_comes_out_identical_on_another() {
    let server = Server::start();
    let phone = Device::new(&server);
    let laptop = Device::new(&server);
    let account = email();
    phone.signup(&account);
    laptop.login(&account);
    day(&phone);

    // Over the sample schema's eager limit (5 MB), so the laptop downloads on demand.
    let data = bytes(6_000_000, 1);
    let file = phone.data_dir().join("squat.jpg");
    std::fs::write(&file, &data).unwrap();
    let record = phone.json(&["attach", "plan_days", "d1", "photo", file.to_str().unwrap()]);
    let photo = &record["doc"]["photo"];
    assert_eq!(photo["size"], json!(data.len()));
    assert_eq!(photo["contentType"], "image/jpeg");
    assert_eq!(photo["name"], "squat.jpg");
    assert_eq!(photo["hash"].as_str().unwrap().len(), 64);

    let status = phone.json(&["status"]);
    assert_eq!(
        status["attachments"],
        json!({"pending": 1, "bytesPending": data.len(), "failed": 0})
    );
    phone.json(&["sync"]);
    assert_eq!(
        phone.json(&["status"])["attachments"],
        json!({"pending": 0, "bytesPending": 0, "failed": 0})
    );

    laptop.json(&["sync"]);
    let out = laptop.data_dir().join("copy.jpg");
    let written = laptop.json(&[
        "attachment",
        "plan_days",
        "d1",
        "photo",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(written["hash"], photo["hash"]);
    assert_eq!(written["size"], json!(data.len()));
    assert_eq!(std::fs::read(&out).unwrap(), data);

    // An empty field, and a field that is not an attachment.
    laptop.json(&[
        "put",
        "plan_days",
        r#"{"planId": "legs", "dayIndex": 1}"#,
        "--id",
        "d2",
    ]);
    assert_eq!(
        laptop.error(
            &[
                "attachment",
                "plan_days",
                "d2",
                "photo",
                "--out",
                out.to_str().unwrap()
            ],
            1
        ),
        "not_found"
    );
    assert_eq!(
        laptop.error(
            &["attach", "plan_days", "d2", "title", file.to_str().unwrap()],
            1
        ),
        "validation"
    );
}

#[test]
fn a_device_killed_mid_upload_resumes_without_sending_the_file_twice() {
    let server = Server::start();
    let proxy = Proxy::start(&server.url);
    let phone = Device {
        dir: tempfile::tempdir().unwrap(),
        server: proxy.url().to_string(),
    };
    phone.signup(&email());
    day(&phone);
    let data = bytes(2 * CHUNK as usize + 1_000_000, 2);
    let file = phone.data_dir().join("long.mov");
    std::fs::write(&file, &data).unwrap();
    phone.json(&[
        "attach",
        "plan_days",
        "d1",
        "photo",
        file.to_str().unwrap(),
        "--content-type",
        "video/quicktime",
    ]);

    let mut command = phone.command(&["--json", "sync"]);
    command.env("TANDEM_CRASH_POINT", "upload_chunk_sent");
    let crashed = run(command);
    assert!(!crashed.status.success(), "{crashed:?}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(crashed.status.signal(), Some(6), "aborted: {crashed:?}");
    }
    assert!(
        proxy.body_bytes("/sync/v1/blobs/uploads/") > 0,
        "a chunk went up before the crash"
    );
    // Nothing was pushed: the change naming the file waits for it (and its plan with it).
    let waiting = phone.json(&["outbox"]).as_array().unwrap().len();
    assert!(waiting >= 2, "{waiting} changes wait");

    let report = phone.json(&["sync"]);
    assert_eq!(report["applied"], json!(waiting));
    let sent = proxy.body_bytes("/sync/v1/blobs/uploads/");
    let size = data.len() as u64;
    assert!(
        (size..=size + CHUNK).contains(&sent),
        "sent {sent} body bytes for a file of {size}"
    );
    assert_eq!(phone.json(&["status"])["attachments"]["pending"], 0);
}
