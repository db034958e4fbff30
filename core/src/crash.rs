//! Crash points: places in a sync run (and an encryption conversion) where a test can make the process die, to check that a
//! device killed there recovers on its next run.
//!
//! A point is armed by starting the process with `TANDEM_CRASH_POINT=<name>` (one name, see
//! [`Point::name`]); when a run reaches it the process aborts on the spot (no unwinding, no
//! destructors, no flush: as close to a kill as a process can do to itself). The variable is read
//! once, on the first point reached; with it unset every point is one load of a cached `None`.
//! An unknown name arms nothing.

use std::sync::OnceLock;

/// The environment variable that arms a crash point.
pub const ENV: &str = "TANDEM_CRASH_POINT";

/// Where a sync run can be made to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// The server answered a push batch (and committed it); the client has not applied the answer.
    PushAnswered,
    /// The client committed a push batch's answers; the next batch is not taken yet.
    PushApplied,
    /// A pull page arrived; nothing of it is applied.
    PullFetched,
    /// A pull page and its cursor are committed and more pages follow.
    PullBetweenPages,
    /// A full re-pull was recorded as owed (`begin_repull` committed); no page is fetched yet.
    RepullStarted,
    /// Every page of a full re-pull is applied; the sweep of records the server no longer has has
    /// not run.
    RepullBeforeSweep,
    /// The server acknowledged a chunk of an attachment upload; the next chunk is not sent yet
    /// (the upload is not marked done locally).
    UploadChunkSent,
    /// An encryption conversion stored its target key (`db-key-next`); no copy exists yet.
    ConvertNextKeyWritten,
    /// A conversion copied its first pages into `<db>.converting`.
    ConvertCopying,
    /// The copy is whole and synced; the database is not replaced yet.
    ConvertCopied,
    /// The copy was renamed over the database; the cache and the keys are not converted yet.
    ConvertRenamed,
    /// The attachment cache is converted; the key is not promoted (or deleted) yet.
    ConvertCacheConverted,
    /// The conversion is complete (its key promoted or deleted).
    ConvertPromoted,
}

impl Point {
    pub const ALL: [Point; 13] = [
        Point::PushAnswered,
        Point::PushApplied,
        Point::PullFetched,
        Point::PullBetweenPages,
        Point::RepullStarted,
        Point::RepullBeforeSweep,
        Point::UploadChunkSent,
        Point::ConvertNextKeyWritten,
        Point::ConvertCopying,
        Point::ConvertCopied,
        Point::ConvertRenamed,
        Point::ConvertCacheConverted,
        Point::ConvertPromoted,
    ];

    /// The name `TANDEM_CRASH_POINT` takes for this point.
    pub fn name(self) -> &'static str {
        match self {
            Point::PushAnswered => "push_answered",
            Point::PushApplied => "push_applied",
            Point::PullFetched => "pull_fetched",
            Point::PullBetweenPages => "pull_between_pages",
            Point::RepullStarted => "repull_started",
            Point::RepullBeforeSweep => "repull_before_sweep",
            Point::UploadChunkSent => "upload_chunk_sent",
            Point::ConvertNextKeyWritten => "convert_next_key_written",
            Point::ConvertCopying => "convert_copying",
            Point::ConvertCopied => "convert_copied",
            Point::ConvertRenamed => "convert_renamed",
            Point::ConvertCacheConverted => "convert_cache_converted",
            Point::ConvertPromoted => "convert_promoted",
        }
    }

    /// The point named `name`, if any.
    pub fn parse(name: &str) -> Option<Point> {
        Point::ALL.into_iter().find(|p| p.name() == name.trim())
    }
}

fn armed() -> Option<Point> {
    static ARMED: OnceLock<Option<Point>> = OnceLock::new();
    *ARMED.get_or_init(|| std::env::var(ENV).ok().as_deref().and_then(Point::parse))
}

/// Aborts the process if `point` is the armed one.
#[inline]
pub fn reached(point: Point) {
    if armed() == Some(point) {
        eprintln!("tandem: crash point {} reached, aborting", point.name());
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::Point;

    #[test]
    fn every_point_parses_back_from_its_name() {
        for point in Point::ALL {
            assert_eq!(Point::parse(point.name()), Some(point));
        }
        assert_eq!(Point::parse("push_answered\n"), Some(Point::PushAnswered));
        assert_eq!(Point::parse("nowhere"), None);
        assert_eq!(Point::parse(""), None);
    }
}
