//! Observation: one registry and one notification thread per client deliver every kind of
//! observer: query and record observers, change listeners, and watched values (the sync status
//! and the auth state, kept as `tokio::sync::watch` values by their owners). Each observer gets
//! the current value first, then changes. Callbacks run on the notification thread only, never
//! inside a write or while an engine lock is held, so an observer may write to the engine itself
//! without deadlocking, and a slow observer never holds up a writer. Every subscription ends when
//! its [`SubscriptionHandle`] is cancelled or dropped.

use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, Weak};
use std::thread::{self, JoinHandle};

use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::query::CompiledQuery;
use crate::records::RecordRow;
use crate::runtime::runtime;
use crate::store::{lock, CurrentStore};

/// Receives the current results of an observed query.
pub type QueryCallback = Box<dyn Fn(Vec<RecordRow>) + Send + Sync>;
/// Receives the collections one commit changed.
pub type ChangeCallback = Box<dyn Fn(Vec<String>) + Send + Sync>;

enum Event {
    Committed(BTreeSet<String>),
    /// The store behind the engine changed (another account): everything may differ.
    Switched(BTreeSet<String>),
    Subscribed(u64),
    /// The value watched by subscription `id` changed.
    Watched(u64),
    Stop,
}

/// Reserved change names (entity names cannot start with `$`): a commit that changed the user's
/// spaces or pending invitations names them, and their observers read the table again.
pub const SPACES: &str = "$spaces";
pub const INVITATIONS: &str = "$invitations";
/// Reserved change name of attachment states: a commit that changed the attachments table, or a
/// transfer's progress (`attachments::progress`), names it, and attachment observers read again.
pub const ATTACHMENTS: &str = "$attachments";

/// Reads an observed value from the store and hands it to its callback.
pub type StoredDelivery =
    Box<dyn Fn(&crate::store::Store) -> crate::error::Result<()> + Send + Sync>;

/// An observer of a value read from the store (the spaces, the invitations), keyed by its
/// reserved change name.
struct StoredSubscription {
    name: String,
    /// Reads the value (in one read snapshot) and then hands it to the callback.
    deliver: StoredDelivery,
}

struct QuerySubscription {
    collection: String,
    query: CompiledQuery,
    callback: QueryCallback,
}

/// A watched value and the callback it goes to.
trait WatchedValue: Send + Sync {
    /// Delivers the current value: always when `first`, otherwise only if it changed since the
    /// last delivery. The value is cloned out before the callback runs, so no lock is held.
    fn deliver(&self, first: bool);
}

struct Watched<T> {
    receiver: Mutex<watch::Receiver<T>>,
    callback: Box<dyn Fn(T) + Send + Sync>,
}

impl<T: Clone + Send + Sync> WatchedValue for Watched<T> {
    fn deliver(&self, first: bool) {
        let value = {
            let mut receiver = lock(&self.receiver);
            if !first && !receiver.has_changed().unwrap_or(false) {
                return;
            }
            let value = receiver.borrow_and_update().clone();
            value
        };
        (self.callback)(value);
    }
}

#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    queries: Mutex<HashMap<u64, Arc<QuerySubscription>>>,
    listeners: Mutex<HashMap<u64, Arc<ChangeCallback>>>,
    watched: Mutex<HashMap<u64, Arc<dyn WatchedValue>>>,
    stored: Mutex<HashMap<u64, Arc<StoredSubscription>>>,
    /// The tasks that wake the thread when a watched value changes.
    wakers: Mutex<HashMap<u64, AbortHandle>>,
}

impl Registry {
    fn remove(&self, id: u64) {
        lock(&self.queries).remove(&id);
        lock(&self.listeners).remove(&id);
        lock(&self.watched).remove(&id);
        lock(&self.stored).remove(&id);
        if let Some(waker) = lock(&self.wakers).remove(&id) {
            waker.abort();
        }
    }

    fn clear(&self) {
        lock(&self.queries).clear();
        lock(&self.listeners).clear();
        lock(&self.watched).clear();
        lock(&self.stored).clear();
        for (_, waker) in lock(&self.wakers).drain() {
            waker.abort();
        }
    }
}

/// Ends a subscription when cancelled or dropped. Once `cancel` returns no new delivery starts;
/// one already running on the notification thread finishes.
pub struct SubscriptionHandle {
    registry: Weak<Registry>,
    id: u64,
}

impl SubscriptionHandle {
    pub fn cancel(&self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.remove(self.id);
        }
    }
}

impl Drop for SubscriptionHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// The notification thread and what is subscribed to it. Subscriptions outlive account switches:
/// queries run against whichever store is current. The thread stops when the last owner drops it.
pub struct Notifier {
    registry: Arc<Registry>,
    events: Mutex<Sender<Event>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Notifier {
    pub fn start(store: Arc<CurrentStore>) -> std::io::Result<Self> {
        let registry = Arc::new(Registry::default());
        let (events, receiver) = mpsc::channel();
        let worker_registry = Arc::clone(&registry);
        let thread = thread::Builder::new()
            .name("tandem-notify".into())
            .spawn(move || run(&store, &worker_registry, &receiver))?;
        Ok(Self {
            registry,
            events: Mutex::new(events),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Tells observers that a commit changed `collections`.
    pub fn committed(&self, collections: BTreeSet<String>) {
        // With nobody subscribed there is no one to wake the thread for; a later subscriber
        // starts from fresh results anyway.
        if !collections.is_empty() && self.has_subscribers() {
            self.send(Event::Committed(collections));
        }
    }

    /// Tells observers that the current store was replaced; `collections` are all of the schema's.
    pub fn switched(&self, collections: BTreeSet<String>) {
        self.send(Event::Switched(collections));
    }

    /// Calls `callback` with the query's results now and after every commit to `collection`.
    pub fn observe(
        &self,
        collection: &str,
        query: CompiledQuery,
        callback: QueryCallback,
    ) -> SubscriptionHandle {
        let id = self.next_id();
        let subscription = QuerySubscription {
            collection: collection.to_string(),
            query,
            callback,
        };
        lock(&self.registry.queries).insert(id, Arc::new(subscription));
        self.send(Event::Subscribed(id));
        self.handle(id)
    }

    /// Calls `callback` with the value `read` gets from the store now and after every commit that
    /// names `name` (a reserved change name: [`SPACES`], [`INVITATIONS`]), on the notification
    /// thread like every observer.
    pub fn observe_stored<T: 'static>(
        &self,
        name: &str,
        read: fn(&rusqlite::Connection) -> crate::error::Result<T>,
        callback: Box<dyn Fn(T) + Send + Sync>,
    ) -> SubscriptionHandle {
        self.observe_named(
            name,
            Box::new(move |store| {
                let value = store.read(read)?;
                callback(value);
                Ok(())
            }),
        )
    }

    /// Calls `deliver` with the current store now and after every commit that names `name` (a
    /// reserved change name); `deliver` reads what it observes and calls its callback (or not,
    /// when the value did not change). On the notification thread like every observer.
    pub fn observe_named(&self, name: &str, deliver: StoredDelivery) -> SubscriptionHandle {
        let id = self.next_id();
        let subscription = StoredSubscription {
            name: name.to_string(),
            deliver,
        };
        lock(&self.registry.stored).insert(id, Arc::new(subscription));
        self.send(Event::Subscribed(id));
        self.handle(id)
    }

    /// Calls `callback` with the watched value now and after every change, until the handle is
    /// dropped. Changes in quick succession may be delivered as the newest value only.
    pub fn watch<T: Clone + Send + Sync + 'static>(
        &self,
        receiver: watch::Receiver<T>,
        callback: Box<dyn Fn(T) + Send + Sync>,
    ) -> SubscriptionHandle {
        let id = self.next_id();
        let mut changes = receiver.clone();
        let watched = Watched {
            receiver: Mutex::new(receiver),
            callback,
        };
        lock(&self.registry.watched).insert(id, Arc::new(watched));
        let events = lock(&self.events).clone();
        let waker = runtime().spawn(async move {
            while changes.changed().await.is_ok() {
                if events.send(Event::Watched(id)).is_err() {
                    break;
                }
            }
        });
        lock(&self.registry.wakers).insert(id, waker.abort_handle());
        self.send(Event::Subscribed(id));
        self.handle(id)
    }

    /// Calls `callback` with the changed collections after every commit.
    pub fn listen(&self, callback: ChangeCallback) -> SubscriptionHandle {
        let id = self.next_id();
        lock(&self.registry.listeners).insert(id, Arc::new(callback));
        self.handle(id)
    }

    /// Stops the thread after what is queued, waiting for it unless called from it.
    pub fn stop(&self) {
        self.send(Event::Stop);
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            if thread.thread().id() != thread::current().id() {
                let _ = thread.join();
            }
        }
        self.registry.clear();
    }

    fn has_subscribers(&self) -> bool {
        !lock(&self.registry.queries).is_empty()
            || !lock(&self.registry.listeners).is_empty()
            || !lock(&self.registry.watched).is_empty()
            || !lock(&self.registry.stored).is_empty()
    }

    fn send(&self, event: Event) {
        // The thread is gone only after `stop`; late events have no one left to tell.
        let _ = lock(&self.events).send(event);
    }

    fn next_id(&self) -> u64 {
        self.registry.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn handle(&self, id: u64) -> SubscriptionHandle {
        SubscriptionHandle {
            registry: Arc::downgrade(&self.registry),
            id,
        }
    }
}

fn run(store: &CurrentStore, registry: &Registry, events: &Receiver<Event>) {
    while let Ok(first) = events.recv() {
        // Drain what queued up meanwhile: listeners hear every commit, while each query is
        // evaluated once for the whole burst.
        let mut changed = BTreeSet::new();
        let mut fresh = BTreeSet::new();
        let mut watched = BTreeSet::new();
        let mut stop = false;
        let mut everything = false;
        for event in std::iter::once(first).chain(events.try_iter()) {
            match event {
                Event::Committed(collections) => {
                    tell_listeners(registry, &collections);
                    changed.extend(collections);
                }
                Event::Switched(collections) => {
                    tell_listeners(registry, &collections);
                    everything = true;
                }
                Event::Subscribed(id) => {
                    fresh.insert(id);
                }
                Event::Watched(id) => {
                    watched.insert(id);
                }
                Event::Stop => stop = true,
            }
        }
        if stop {
            return;
        }
        let due: Vec<(u64, Arc<QuerySubscription>)> = lock(&registry.queries)
            .iter()
            .filter(|(id, s)| everything || fresh.contains(id) || changed.contains(&s.collection))
            .map(|(id, s)| (*id, Arc::clone(s)))
            .collect();
        for (id, subscription) in due {
            if !lock(&registry.queries).contains_key(&id) {
                continue; // cancelled by an earlier callback of this round
            }
            // A failed read leaves the observer with its previous results; the next commit retries.
            let Some(store) = store.get() else { continue };
            match store.read(|conn| subscription.query.rows(conn)) {
                Ok(rows) => {
                    if catch_unwind(AssertUnwindSafe(|| (subscription.callback)(rows))).is_err() {
                        tracing::error!(collection = %subscription.collection, "a query observer panicked");
                    }
                }
                Err(e) => tracing::warn!(
                    collection = %subscription.collection,
                    error = %e,
                    "re-running an observed query failed; the observer keeps its previous results"
                ),
            }
        }
        let due: Vec<(u64, Arc<StoredSubscription>)> = lock(&registry.stored)
            .iter()
            .filter(|(id, s)| everything || fresh.contains(id) || changed.contains(&s.name))
            .map(|(id, s)| (*id, Arc::clone(s)))
            .collect();
        for (id, subscription) in due {
            if !lock(&registry.stored).contains_key(&id) {
                continue; // cancelled by an earlier callback of this round
            }
            let Some(store) = store.get() else { continue };
            match catch_unwind(AssertUnwindSafe(|| (subscription.deliver)(&store))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(name = %subscription.name, error = %e, "reading an observed value failed")
                }
                Err(_) => tracing::error!(name = %subscription.name, "an observer panicked"),
            }
        }
        let due: Vec<(u64, Arc<dyn WatchedValue>)> = lock(&registry.watched)
            .iter()
            .filter(|(id, _)| fresh.contains(id) || watched.contains(id))
            .map(|(id, w)| (*id, Arc::clone(w)))
            .collect();
        for (id, value) in due {
            if !lock(&registry.watched).contains_key(&id) {
                continue; // cancelled by an earlier callback of this round
            }
            let first = fresh.contains(&id);
            if catch_unwind(AssertUnwindSafe(|| value.deliver(first))).is_err() {
                tracing::error!("a status or auth observer panicked");
            }
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tell_listeners(registry: &Registry, collections: &BTreeSet<String>) {
    let listeners: Vec<Arc<ChangeCallback>> = lock(&registry.listeners).values().cloned().collect();
    // Reserved names (`$spaces`, ...) are for their own observers; listeners hear collections.
    let names: Vec<String> = collections
        .iter()
        .filter(|c| !c.starts_with('$'))
        .cloned()
        .collect();
    if names.is_empty() {
        return;
    }
    for listener in listeners {
        // A foreign callback that throws must not end the thread for every other observer.
        if catch_unwind(AssertUnwindSafe(|| listener(names.clone()))).is_err() {
            tracing::error!("a change listener panicked");
        }
    }
}
