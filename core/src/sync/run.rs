//! One sync run: push the outbox in batches, then pull every page. Store work runs on tokio's
//! blocking pool so the runtime's two worker threads only ever wait on the network.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use tandem_protocol::PullResponse;

use super::api::{SyncApi, Traffic};
use super::conflict::{self, ConflictPolicy};
use super::error::SyncError;
use super::push::PushOutcome;
use super::{pull, push, spaces};
use crate::attachments;
use crate::attachments::download;
use crate::crash::{self, Point};
use crate::engine::{now_ms, Engine};
use crate::error::Result;
use crate::outbox;

/// Settings of a run.
#[derive(Debug, Clone, Copy)]
pub struct RunSettings {
    pub push_batch_size: usize,
    pub pull_page_size: u32,
    pub policy: ConflictPolicy,
    /// The attachment cache's limit (eviction after a prefetch).
    pub attachment_cache_bytes: u64,
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SyncReport {
    /// Mutations sent.
    pub pushed: u64,
    pub applied: u64,
    pub duplicates: u64,
    /// Conflicts met (on push or pull), whether settled by policy or left to the app.
    pub conflicts: u64,
    pub rejected: u64,
    /// Changes received.
    pub pulled: u64,
    pub duration_ms: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Conflicts left to the app by this run (collection, id).
    pub parked: Vec<(String, String)>,
    /// Whether this run pulled everything again (after `cursor_expired`, or to finish such a
    /// re-pull cut off before), removing what the server no longer has.
    pub full_repull: bool,
    /// What became of each pushed mutation, in the order sent.
    pub outcomes: Vec<PushOutcome>,
    /// Pulled records skipped because this device holds their id in another space.
    pub space_collisions: u64,
    /// Attachments the upload phase finished (uploaded, or found held by the server already).
    pub attachments_uploaded: u64,
    /// Attachment bytes sent in upload chunks the server answered, refused ones included (not
    /// counted in `bytes_sent`).
    pub attachment_bytes_sent: u64,
    /// Attachment bytes downloaded by the run (eager prefetch; not counted in `bytes_received`).
    pub attachment_bytes_received: u64,
    /// Attachments of pulled records of `"download": "eager"` collections, for the prefetch.
    pub(crate) eager: Vec<download::Wanted>,
}

impl SyncReport {
    fn count(&mut self, traffic: Traffic) {
        self.bytes_sent += traffic.sent;
        self.bytes_received += traffic.received;
    }
}

/// Progress of a pull: changes received so far and still to come.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// Progress of an attachment transfer: `(hash, bytes of it done, its size, attachment bytes moved
/// by this run so far)`, called as each chunk is acknowledged.
pub type TransferProgress<'a> = &'a (dyn Fn(&str, u64, u64, u64) + Send + Sync);

/// Uploads the attachments unsent changes name, pushes, then pulls, until all are done; then
/// the attachments again: the files nothing references any more are collected, and the eager
/// prefetch fetches what the pull brought.
pub async fn run(
    engine: &Arc<Engine>,
    api: &SyncApi,
    settings: RunSettings,
    on_pull_progress: Progress<'_>,
    on_transfer: TransferProgress<'_>,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let mut report = push_and_pull(engine, api, settings, on_pull_progress, on_transfer).await?;
    let eager = std::mem::take(&mut report.eager);
    let sent = report.attachment_bytes_sent;
    let moved = |hash: &str, size: u64, received: u64| on_transfer(hash, 0, size, sent + received);
    report.attachment_bytes_received +=
        download::after_run(engine, api, eager, settings.attachment_cache_bytes, &moved).await;
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

async fn push_and_pull(
    engine: &Arc<Engine>,
    api: &SyncApi,
    settings: RunSettings,
    on_pull_progress: Progress<'_>,
    on_transfer: TransferProgress<'_>,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let mut report = SyncReport::default();
    // Before the push: a change goes up only once the server holds its attachments.
    // Each chunk's progress goes to the attachment's state observers too; the phase uploads one
    // attachment after the other, so when another one reports, the one before is settled
    // (uploaded or failed, committed) and its state is the table's again.
    let progress = engine.attachment_progress();
    let current: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let uploading = |hash: &str, done: u64, total: u64, moved: u64| {
        let previous = {
            let mut current = crate::store::lock(&current);
            match current.as_deref() {
                Some(h) if h == hash => None,
                _ => current.replace(hash.to_string()),
            }
        };
        if let Some(previous) = previous {
            progress.finished(&previous);
        }
        progress.uploading(hash, done, total);
        on_transfer(hash, done, total, moved);
    };
    let uploaded = attachments::upload::run(engine, api, &mut report, &uploading).await;
    if let Some(last) = crate::store::lock(&current).take() {
        progress.finished(&last);
    }
    uploaded?;
    push_all(engine, api, settings, &mut report).await?;
    if engine.uses_streams() {
        pull_streams(engine, api, settings, &mut report, on_pull_progress).await?;
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }
    let (mut repull, first_pull_to_sweep) = blocking(engine, |e| {
        e.store().read(|c| {
            let first_pull = pull::cursor(c)?.is_none();
            Ok((pull::repull_owed(c)?, first_pull && pull::any_synced(c)?))
        })
    })
    .await?;
    if !repull && !first_pull_to_sweep {
        match pull_all(engine, api, settings, &mut report, on_pull_progress, false).await {
            Err(SyncError::CursorExpired) => repull = true,
            other => other?,
        }
    }
    if repull {
        tracing::info!(
            "pulling everything again (cursor expired or an earlier re-pull unfinished)"
        );
        report.full_repull = true;
    }
    // A first pull (no cursor yet) by a device that already holds synced records is swept like a
    // re-pull: it pushed them before it ever pulled, and the server may since have deleted them,
    // their tombstones purged, which only the sweep can tell. Any other first pull resumes from
    // its last applied page when cut off.
    if repull || first_pull_to_sweep {
        pull_all(engine, api, settings, &mut report, on_pull_progress, true).await?;
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// How many push batches one take from the outbox holds: the window the pipeline works through
/// (see [`push_all`]).
pub const PUSH_WINDOW_BATCHES: usize = 8;

/// Pushes the outbox, pipelined: the entries of up to [`PUSH_WINDOW_BATCHES`] batches are taken
/// from the outbox at once (one `take_batch`, so the window holds at most one entry per record,
/// its groups whole, in commit order), then sent one batch after the other; while the answers to
/// one batch are written, the next batch is already on its way.
///
/// Why that is safe (the in-flight window):
/// - the server has committed batch *n* before batch *n+1* leaves (it left once *n*'s answer
///   came back), so the server sees the changes in commit order, parents and referenced records
///   before what names them, as without the overlap;
/// - a window holds one entry per record, and groups whole (split between batches only at their
///   edges), so writing batch *n*'s answers never changes an entry of batch *n+1* (a confirmed
///   change rebases only the later entries of its own record, which are not in the window);
/// - the next batch leaves early only when every answer of the one before is `applied` or
///   `duplicate`. Any other answer (a conflict, a rejection, a group aborted, a parent
///   missing) is written first, and in the same transaction the batches of the window not sent
///   yet become pending again, exactly as if they had never been taken: the policy, the cascade
///   of a delete, the wait for a parent or a conflicted ancestor see the outbox they saw before
///   pipelining, and the next take starts afresh;
/// - every batch's answers are written in one transaction, so a run cut off (cancelled, shut
///   down, crashed) leaves each batch either applied or still in flight; entries in flight,
///   answered or not, sent or not, go again first in the next run with the same op ids, which the
///   server answers `duplicate` when it had applied them.
async fn push_all(
    engine: &Arc<Engine>,
    api: &SyncApi,
    settings: RunSettings,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    // Changes refused for a parent that has not landed, in this run: once a batch holds only
    // changes that already waited, nothing they wait for can land in this run.
    let mut waited = HashSet::new();
    let limit = settings.push_batch_size.max(1);
    loop {
        let window_limit = limit.saturating_mul(PUSH_WINDOW_BATCHES);
        let window = blocking(engine, move |e| {
            let schema = e.schema();
            e.store().write(|tx| {
                let any_conflict = conflict::count(tx)? > 0;
                // A change naming an attachment not uploaded yet waits (with its group).
                let uploads = attachments::UploadGate::load(tx)?;
                outbox::take_batch(tx, window_limit, |entry| {
                    Ok(uploads.waits(schema, entry)
                        || (any_conflict && push::waits_for_ancestor(tx, schema, entry)?))
                })
            })
        })
        .await?;
        if window.is_empty() {
            return Ok(());
        }
        let mut batches = push::split_batches(window, limit).into_iter();
        let Some(mut batch) = batches.next() else {
            return Ok(());
        };
        let mut answer = send_batch(api, &batch).await?;
        loop {
            let (response, traffic) = answer;
            crash::reached(Point::PushAnswered);
            report.count(traffic);
            report.pushed += batch.len() as u64;
            // The next batch leaves now only when this answer changes nothing but the records
            // it confirms; otherwise the rest of the window goes back to the outbox first.
            let clean = push::all_landed(&response);
            let next = if clean { batches.next() } else { None };
            let untake: Vec<i64> = if clean {
                Vec::new()
            } else {
                batches.by_ref().flatten().map(|e| e.seq).collect()
            };
            let policy = settings.policy;
            let apply = blocking(engine, move |e| {
                let schema = e.schema();
                let tally = e.store().write(|tx| {
                    outbox::untake(tx, &untake)?;
                    push::apply_answer(
                        tx,
                        schema,
                        e.edit_clock(),
                        &batch,
                        &response,
                        policy,
                        now_ms(),
                    )
                })?;
                e.committed(tally.changed.clone());
                Ok(tally)
            });
            let (tally, sent) = match next {
                Some(next) => {
                    let (applied, sent) = tokio::join!(apply, send_batch(api, &next));
                    (applied?, Some((next, sent)))
                }
                None => (apply.await?, None),
            };
            crash::reached(Point::PushApplied);
            report.applied += tally.applied;
            report.duplicates += tally.duplicates;
            report.conflicts += tally.conflicts;
            report.rejected += tally.rejected;
            report.parked.extend(tally.parked);
            // A group member answered `aborted` waits with its group, which waits for its parent
            // when that is why the group failed.
            let waits: Vec<String> = tally
                .outcomes
                .iter()
                .filter(|o| {
                    matches!(
                        o.outcome,
                        push::Outcome::WaitsForParent | push::Outcome::WaitsForGroup(_)
                    )
                })
                .map(|o| o.op_id.clone())
                .collect();
            // Only an answer that was not clean can hold nothing but waits (every entry of a
            // clean one left the outbox), and after it nothing else is in flight.
            let stuck = !clean
                && waits.len() == tally.outcomes.len()
                && waits.iter().all(|w| waited.contains(w));
            report.outcomes.extend(tally.outcomes);
            if stuck {
                return Ok(());
            }
            waited.extend(waits);
            match sent {
                Some((next, sent)) => {
                    batch = next;
                    answer = sent?;
                }
                None => break,
            }
        }
    }
}

/// Sends one batch.
async fn send_batch(
    api: &SyncApi,
    batch: &[outbox::OutboxEntry],
) -> Result<(tandem_protocol::PushResponse, Traffic), SyncError> {
    let mutations = batch
        .iter()
        .map(push::to_mutation)
        .collect::<Result<Vec<_>>>()?;
    api.push(mutations).await
}

/// Pulls every page from the stored cursor; `from_scratch` pulls everything (a first pull, or
/// again after `cursor_expired`) and then removes local synced records the server no longer has.
async fn pull_all(
    engine: &Arc<Engine>,
    api: &SyncApi,
    settings: RunSettings,
    report: &mut SyncReport,
    on_progress: Progress<'_>,
    from_scratch: bool,
) -> Result<(), SyncError> {
    let (cursor, candidates) = if from_scratch {
        // From the start every time, even when an earlier re-pull stored the cursor of a page:
        // the sweep needs every record delivered by this one.
        let candidates = blocking(engine, |e| {
            e.store().write(pull::begin_repull)?;
            e.store().read(pull::synced_records)
        })
        .await?;
        crash::reached(Point::RepullStarted);
        (None, Some(candidates))
    } else {
        (
            blocking(engine, |e| e.store().read(pull::cursor)).await?,
            None,
        )
    };
    let mut seen = candidates.as_ref().map(|_| HashSet::new());
    let mut received = 0;
    let mut fetched = api.pull(cursor, settings.pull_page_size).await?;
    loop {
        let (page, traffic) = fetched;
        crash::reached(Point::PullFetched);
        report.count(traffic);
        received += page.changes.len() as u64;
        report
            .eager
            .extend(download::eager_refs(engine.schema(), &page.changes));
        let PullResponse {
            changes,
            cursor: next,
            has_more,
            remaining,
            server_time,
        } = page;
        let policy = settings.policy;
        let mut seen_page = seen.take();
        let page_cursor = next.clone();
        let apply = blocking(engine, move |e| {
            let schema = e.schema();
            let tally = e.store().write(|tx| {
                let seen_times = changes.iter().filter_map(|c| c.edited_at.as_ref());
                e.edit_clock()
                    .observe(tx, server_time.as_ref(), seen_times)?;
                pull::apply_page(
                    tx,
                    schema,
                    &changes,
                    &page_cursor,
                    policy,
                    now_ms(),
                    seen_page.as_mut(),
                )
            })?;
            e.committed(tally.changed.clone());
            Ok((tally, seen_page))
        });
        // While this page is written, the next one is already on its way: the server and the
        // client each work instead of waiting for the other. A failed write drops the prefetched
        // page unapplied, so the stored cursor never runs ahead of the data.
        let (applied, prefetched) = if has_more {
            let (applied, prefetched) =
                tokio::join!(apply, api.pull(Some(next), settings.pull_page_size));
            (applied?, Some(prefetched))
        } else {
            (apply.await?, None)
        };
        let (tally, returned_seen) = applied;
        if has_more {
            crash::reached(Point::PullBetweenPages);
        }
        seen = returned_seen;
        report.pulled += tally.applied + tally.skipped;
        report.conflicts += tally.conflicts;
        report.parked.extend(tally.parked);
        on_progress(received, if has_more { remaining } else { 0 });
        match prefetched {
            Some(page) => fetched = page?,
            None => break,
        }
    }
    if let (Some(candidates), Some(seen)) = (candidates, seen) {
        crash::reached(Point::RepullBeforeSweep);
        blocking(engine, move |e| {
            let schema = e.schema();
            let changed = e
                .store()
                .write(|tx| pull::sweep_missing(tx, schema, &candidates, &seen, now_ms()))?;
            e.committed(changed);
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// The multi-stream pull (a schema with `space` or `public` collections; docs/design/spaces.md
/// §9): every stream's cursor and the account's sequence go in each request; each page is
/// applied in one transaction with the streams' new positions. A stream whose cursor expired
/// (now, or in an earlier run that did not finish its re-pull) is pulled from the start and then
/// swept alone; the others continue where they were.
async fn pull_streams(
    engine: &Arc<Engine>,
    api: &SyncApi,
    settings: RunSettings,
    report: &mut SyncReport,
    on_progress: Progress<'_>,
) -> Result<(), SyncError> {
    let (mut cursors, account_seq, repulls, owed) = blocking(engine, |e| {
        let schema = e.schema();
        e.store().write(|tx| {
            let mut cursors = BTreeMap::new();
            let mut repulls = HashMap::new();
            // Whether a stream owes a re-pull (an expired cursor, an unfinished re-pull): that is
            // a full re-pull to report; a first pull swept like one is not (as without streams).
            let mut owed = false;
            for row in pull::stream_cursors(tx)? {
                owed |= row.repull_owed;
                // A re-pull owed starts again from the beginning (its sweep needs every record
                // delivered by one re-pull), and so does a first pull of a stream of which this
                // device already holds synced records (pushed before it ever pulled).
                let candidates = if row.repull_owed || row.cursor.is_none() {
                    pull::stream_records(tx, schema, &row.stream)?
                } else {
                    Vec::new()
                };
                if row.repull_owed || (row.cursor.is_none() && !candidates.is_empty()) {
                    pull::begin_stream_repull(tx, &row.stream)?;
                    repulls.insert(
                        row.stream.clone(),
                        pull::Repull {
                            candidates,
                            seen: HashSet::new(),
                        },
                    );
                    cursors.insert(row.stream, None);
                } else {
                    cursors.insert(row.stream, row.cursor);
                }
            }
            Ok((cursors, spaces::account_seq(tx)?, repulls, owed))
        })
    })
    .await?;
    if !repulls.is_empty() {
        tracing::info!(
            streams = repulls.len(),
            "pulling streams again (cursor expired, an earlier re-pull unfinished, or a first pull to sweep)"
        );
        report.full_repull = owed;
        crash::reached(Point::RepullStarted);
    }
    let mut repulls = Some(repulls);
    let mut account_seq = account_seq;
    let mut received = 0;
    let limit = settings.pull_page_size;
    let mut fetched = api
        .pull_streams(cursors.clone(), account_seq, limit)
        .await?;
    loop {
        let (page, server_time, traffic) = fetched;
        crash::reached(Point::PullFetched);
        report.count(traffic);
        report
            .eager
            .extend(download::eager_refs(engine.schema(), &page.changes));
        received += page.changes.len() as u64;
        // A stream that expired is read again from its beginning by the next request, whatever
        // `hasMore` says: sweeping it before its re-pull would remove its records.
        let has_more = page.has_more
            || page
                .streams
                .iter()
                .any(|(_, state)| *state == pull::StreamState::Expired);
        let remaining = page.remaining;
        // The next request's positions, known before this page is written: prefetching it
        // overlaps the server's work with the local write.
        for (stream, state) in &page.streams {
            match state {
                pull::StreamState::Ok(cursor) => {
                    cursors.insert(stream.clone(), Some(cursor.clone()));
                }
                pull::StreamState::Expired => {
                    cursors.insert(stream.clone(), None);
                    report.full_repull = true;
                }
                pull::StreamState::Gone => {
                    cursors.remove(stream);
                }
            }
        }
        if let Some(account) = &page.account {
            account_seq = Some(account.account_seq);
            let listed: HashSet<String> = account
                .spaces
                .iter()
                .map(|s| pull::space_stream(&s.id))
                .collect();
            cursors.retain(|stream, _| {
                tandem_protocol::space_of_stream(stream).is_none() || listed.contains(stream)
            });
        }
        let policy = settings.policy;
        let mut page_repulls = repulls.take();
        let apply = blocking(engine, move |e| {
            let schema = e.schema();
            let mut taken = page_repulls.take().unwrap_or_default();
            let tally = e.store().write(|tx| {
                let seen_times = page.changes.iter().filter_map(|c| c.edited_at.as_ref());
                e.edit_clock()
                    .observe(tx, server_time.as_ref(), seen_times)?;
                pull::apply_stream_page(tx, schema, &page, policy, now_ms(), &mut taken)
            })?;
            e.committed(tally.tally.changed.clone());
            Ok((tally, taken))
        });
        let (applied, prefetched) = if has_more {
            let (applied, prefetched) =
                tokio::join!(apply, api.pull_streams(cursors.clone(), account_seq, limit));
            (applied?, Some(prefetched))
        } else {
            (apply.await?, None)
        };
        let (tally, returned) = applied;
        if has_more {
            crash::reached(Point::PullBetweenPages);
        }
        repulls = Some(returned);
        report.pulled += tally.tally.applied + tally.tally.skipped;
        report.conflicts += tally.tally.conflicts;
        report.space_collisions += tally.tally.space_collisions;
        report.parked.extend(tally.tally.parked);
        on_progress(received, if has_more { remaining } else { 0 });
        match prefetched {
            Some(page) => fetched = page?,
            None => break,
        }
    }
    let repulls = repulls.unwrap_or_default();
    if !repulls.is_empty() {
        crash::reached(Point::RepullBeforeSweep);
        blocking(engine, move |e| {
            let schema = e.schema();
            let changed = e.store().write(|tx| {
                let mut changed = std::collections::BTreeSet::new();
                for (stream, repull) in &repulls {
                    changed.extend(pull::sweep_stream(
                        tx,
                        schema,
                        stream,
                        &repull.candidates,
                        &repull.seen,
                        now_ms(),
                    )?);
                }
                Ok(changed)
            })?;
            e.committed(changed);
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// Runs store work on the blocking pool.
pub(crate) async fn blocking<T, F>(engine: &Arc<Engine>, work: F) -> Result<T, SyncError>
where
    T: Send + 'static,
    F: FnOnce(&Engine) -> Result<T> + Send + 'static,
{
    let engine = Arc::clone(engine);
    match tokio::task::spawn_blocking(move || work(&engine)).await {
        Ok(result) => result.map_err(SyncError::from),
        Err(e) => Err(SyncError::Local(format!("a store task failed: {e}"))),
    }
}
