//! `tandem watch`: background sync with realtime on, printing status changes, changed records and
//! changes of the user's spaces and invitations as they happen until Ctrl-C (or SIGTERM).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tandem::{
    Invitation, InvitationsObserver, Query, QueryObserver, Record, Space, SpacesObserver,
    SyncConfig, SyncPhase, SyncStatus, SyncStatusListener,
};
use tokio::runtime::Runtime;

use crate::args::Global;
use crate::device::Device;
use crate::error::CliError;
use crate::render;

pub fn run(rt: &Runtime, global: &Global) -> Result<(), CliError> {
    let device = Device::open(global, SyncConfig::default(), None)?;
    let out = Printer { json: global.json };
    let _status = device.tandem.observe_sync_status(Arc::new(StatusPrinter {
        out,
        last: Mutex::new(None),
    }))?;
    let mut observations = Vec::new();
    for collection in device.collections() {
        observations.push(device.tandem.observe(
            collection.clone(),
            Query::default(),
            Arc::new(CollectionPrinter {
                collection,
                out,
                seen: Mutex::new(None),
            }),
        )?);
    }
    let _spaces = device.tandem.observe_spaces(Arc::new(SpacesPrinter {
        out,
        seen: Mutex::new(None),
    }))?;
    let _invitations = device
        .tandem
        .observe_invitations(Arc::new(InvitationsPrinter {
            out,
            seen: Mutex::new(None),
        }))?;
    device.tandem.start_sync()?;
    if !global.json {
        let who = device
            .tandem
            .current_user()?
            .map_or_else(|| "not signed in".to_string(), |u| u.email);
        eprintln!(
            "watching {} ({who} at {}); Ctrl-C to stop",
            device.data_dir.display(),
            device.server
        );
    }
    rt.block_on(crate::interrupted());
    device.tandem.stop_sync()?;
    Ok(())
}

#[derive(Clone, Copy)]
struct Printer {
    json: bool,
}

impl Printer {
    fn emit(&self, json: Value, text: String) {
        let mut out = std::io::stdout().lock();
        let _ = if self.json {
            writeln!(out, "{json}")
        } else {
            writeln!(out, "{text}")
        };
        let _ = out.flush();
    }
}

struct StatusPrinter {
    out: Printer,
    // The engine reports every change of any field; repeats of the same line are dropped.
    last: Mutex<Option<String>>,
}

impl SyncStatusListener for StatusPrinter {
    fn on_sync_status(&self, status: SyncStatus) {
        // People get one line per run (its outcome) and pull progress; JSON gets every change.
        let in_run = matches!(status.phase, SyncPhase::Pushing | SyncPhase::Pulling);
        if !self.out.json && in_run && status.remaining == 0 {
            return;
        }
        let line = render::status_line(&status);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_deref() == Some(line.as_str()) {
            return;
        }
        *last = Some(line.clone());
        self.out.emit(
            json!({ "event": "status", "status": render::status_json(&status) }),
            format!("status  {line}"),
        );
    }
}

/// Prints what changed in one collection between two deliveries of its records.
struct CollectionPrinter {
    collection: String,
    out: Printer,
    /// The records last seen; `None` until the first delivery, which is the starting point and
    /// prints nothing.
    seen: Mutex<Option<HashMap<String, Record>>>,
}

impl QueryObserver for CollectionPrinter {
    fn on_results(&self, records: Vec<Record>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(before) = seen.as_ref() {
            for record in &records {
                match before.get(&record.id) {
                    None => self.record_event("added", '+', record),
                    Some(old) if old != record => self.record_event("changed", '~', record),
                    Some(_) => {}
                }
            }
            let ids: HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
            let mut removed: Vec<&String> = before
                .keys()
                .filter(|id| !ids.contains(id.as_str()))
                .collect();
            removed.sort();
            for id in removed {
                self.out.emit(
                    json!({
                        "event": "record", "change": "removed",
                        "collection": self.collection, "id": id, "record": null,
                    }),
                    format!("- {}/{id}", self.collection),
                );
            }
        }
        *seen = Some(records.into_iter().map(|r| (r.id.clone(), r)).collect());
    }
}

impl CollectionPrinter {
    fn record_event(&self, change: &str, mark: char, record: &Record) {
        self.out.emit(
            json!({
                "event": "record", "change": change,
                "collection": record.collection, "id": record.id,
                "record": render::record_json(record),
            }),
            format!("{mark} {}", render::record_line(record)),
        );
    }
}

/// Prints spaces joined, changed (renamed, another role) and gone (left, removed, deleted)
/// between two deliveries; the first delivery is the starting point.
struct SpacesPrinter {
    out: Printer,
    seen: Mutex<Option<HashMap<String, Space>>>,
}

impl SpacesObserver for SpacesPrinter {
    fn on_spaces(&self, spaces: Vec<Space>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(before) = seen.as_ref() {
            for space in &spaces {
                let change = match before.get(&space.id) {
                    None => ("added", '+'),
                    Some(old) if old != space => ("changed", '~'),
                    Some(_) => continue,
                };
                self.out.emit(
                    json!({
                        "event": "space", "change": change.0,
                        "space": crate::spaces::space_json(space),
                    }),
                    format!("{} space {}", change.1, crate::spaces::space_line(space)),
                );
            }
            let ids: HashSet<&str> = spaces.iter().map(|s| s.id.as_str()).collect();
            let mut gone: Vec<&Space> = before
                .values()
                .filter(|s| !ids.contains(s.id.as_str()))
                .collect();
            gone.sort_by(|a, b| a.id.cmp(&b.id));
            for space in gone {
                self.out.emit(
                    json!({
                        "event": "space", "change": "removed",
                        "space": crate::spaces::space_json(space),
                    }),
                    format!("- space {}", crate::spaces::space_line(space)),
                );
            }
        }
        *seen = Some(spaces.into_iter().map(|s| (s.id.clone(), s)).collect());
    }
}

/// Prints invitations that arrive and those that go (accepted, declined, revoked, expired).
struct InvitationsPrinter {
    out: Printer,
    seen: Mutex<Option<HashMap<String, Invitation>>>,
}

impl InvitationsObserver for InvitationsPrinter {
    fn on_invitations(&self, invitations: Vec<Invitation>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(before) = seen.as_ref() {
            for invitation in &invitations {
                let change = match before.get(&invitation.id) {
                    None => ("added", '+'),
                    Some(old) if old != invitation => ("changed", '~'),
                    Some(_) => continue,
                };
                self.out.emit(
                    json!({
                        "event": "invitation", "change": change.0,
                        "invitation": crate::spaces::invitation_json(invitation),
                    }),
                    format!(
                        "{} invitation {}",
                        change.1,
                        crate::spaces::invitation_line(invitation)
                    ),
                );
            }
            let ids: HashSet<&str> = invitations.iter().map(|i| i.id.as_str()).collect();
            let mut gone: Vec<&Invitation> = before
                .values()
                .filter(|i| !ids.contains(i.id.as_str()))
                .collect();
            gone.sort_by(|a, b| a.id.cmp(&b.id));
            for invitation in gone {
                self.out.emit(
                    json!({
                        "event": "invitation", "change": "removed",
                        "invitation": crate::spaces::invitation_json(invitation),
                    }),
                    format!(
                        "- invitation {}",
                        crate::spaces::invitation_line(invitation)
                    ),
                );
            }
        }
        *seen = Some(invitations.into_iter().map(|i| (i.id.clone(), i)).collect());
    }
}
