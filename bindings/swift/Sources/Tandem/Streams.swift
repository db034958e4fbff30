// Hand-written AsyncStream adapters over the generated bindings (Tandem.swift): live query results
// and change notifications as `AsyncSequence`s, for `for await` loops and SwiftUI `.task { }`.

import Foundation

extension Tandem {
    /// Live results of a query: the current results right away, then the new results after every
    /// commit that touches `collection`.
    ///
    /// The observation is registered when this is called, so a bad query throws `TandemError`
    /// here rather than ending the stream. It ends (and the underlying `Subscription` is
    /// cancelled) when the loop consuming it exits, when its task is cancelled, or when the stream
    /// is released.
    ///
    /// Only the newest result set is buffered: a slow consumer skips intermediate results and
    /// always sees the current ones, which is what a screen showing the query needs.
    public func observeAsStream(collection: String, query: Query = Query()) throws -> AsyncStream<[Record]> {
        try subscriptionStream(bufferingPolicy: .bufferingNewest(1)) { yield in
            try observe(collection: collection, query: query, observer: StreamQueryObserver(yield))
        }
    }

    /// One record, for a detail screen: the record right away (`nil` while it does not exist),
    /// then again each time it changes, appears or disappears (a local write, a sync, an account
    /// switch); commits that leave it as it was yield nothing. Ends (and cancels the underlying
    /// `Subscription`) like `observeAsStream`, and keeps only the newest value like it.
    public func observeRecordAsStream(collection: String, id: String) throws -> AsyncStream<Record?> {
        try subscriptionStream(bufferingPolicy: .bufferingNewest(1)) { yield in
            try observeRecord(collection: collection, id: id, observer: StreamRecordObserver(yield))
        }
    }

    /// The names of the collections each commit changed, one element per commit. Ends (and
    /// cancels the underlying `Subscription`) like `observeAsStream`.
    ///
    /// Nothing is dropped: every commit is an event of its own. The buffer is unbounded so that
    /// Tandem's notification thread never waits for a slow consumer; each element is a short list
    /// of names.
    public func changesAsStream() throws -> AsyncStream<[String]> {
        try subscriptionStream(bufferingPolicy: .unbounded) { yield in
            try addChangeListener(listener: StreamChangeListener(yield))
        }
    }

    /// The sync status: the current status first, then the status after every change (a run
    /// starting or ending, pull progress, pending/conflict/rejected counts, sign-in and sign-out).
    /// For a sync indicator. Ends (and cancels the underlying `Subscription`) like
    /// `observeAsStream`; throws `TandemError.InvalidArgument` at once when no server is
    /// configured.
    ///
    /// Only the newest status is buffered: a slow consumer skips intermediate ones (pull progress
    /// can change many times a second) and always sees the current one.
    public func syncStatusStream() throws -> AsyncStream<SyncStatus> {
        try subscriptionStream(bufferingPolicy: .bufferingNewest(1)) { yield in
            try observeSyncStatus(listener: StreamSyncStatusListener(yield))
        }
    }

    /// The auth state: the current state first, then every change (sign-in, sign-out, an expired
    /// session). Ends like `observeAsStream`; throws `TandemError.InvalidArgument` at once when
    /// no server is configured.
    ///
    /// Nothing the engine delivers is dropped (unbounded buffer).
    public func authStateStream() throws -> AsyncStream<AuthState> {
        try subscriptionStream(bufferingPolicy: .unbounded) { yield in
            try observeAuthState(listener: StreamAuthStateListener(yield))
        }
    }

    /// The user's spaces: the current list first (as the last sync or space call left it, offline
    /// too), then the list after every change (a space created, joined, renamed, left, deleted, or
    /// the user's role or removal coming in with a sync). For a spaces screen. Ends (and cancels
    /// the underlying `Subscription`) like `observeAsStream`, and keeps only the newest list.
    public func spacesStream() throws -> AsyncStream<[Space]> {
        try subscriptionStream(bufferingPolicy: .bufferingNewest(1)) { yield in
            try observeSpaces(observer: StreamSpacesObserver(yield))
        }
    }

    /// The invitations waiting for the user's answer: the current list first, then the list after
    /// every change (one arriving with a sync, one accepted or declined). For an invitations
    /// banner. Ends like `observeAsStream` and keeps only the newest list.
    public func invitationsStream() throws -> AsyncStream<[Invitation]> {
        try subscriptionStream(bufferingPolicy: .bufferingNewest(1)) { yield in
            try observeInvitations(observer: StreamInvitationsObserver(yield))
        }
    }

    /// The state of one attachment, for a progress bar or a placeholder: the current state first
    /// (`.local`, `.uploaded`, `.remote` …), then every change, upload and download progress
    /// included (at most ten a second). Follows account switches. Ends (and cancels the
    /// underlying `Subscription`) like `observeAsStream` and keeps only the newest state; a hash
    /// that is not 64 lowercase hex digits throws `TandemError.InvalidArgument` here.
    public func attachmentStateStream(hash: String) throws -> AsyncStream<AttachmentState> {
        try subscriptionStream(bufferingPolicy: .bufferingNewest(1)) { yield in
            try observeAttachment(hash: hash, observer: StreamAttachmentObserver(yield))
        }
    }
}

/// The one way every Tandem observation becomes an `AsyncStream`: `register` installs a callback
/// (the `yield` it is given) with the engine and returns the `Subscription` that ends it. Every
/// observation delivers its current value first (Tandem's notification thread does that), so the
/// stream's first element is the current value without any snapshot logic here.
///
/// Callbacks run on Tandem's threads; `yield` never blocks them, the buffering policy decides what
/// happens when the consumer is behind, and a value yielded after the stream ended is dropped.
func subscriptionStream<Element: Sendable>(
    bufferingPolicy: AsyncStream<Element>.Continuation.BufferingPolicy,
    register: (@escaping @Sendable (Element) -> Void) throws -> Subscription
) throws -> AsyncStream<Element> {
    let (stream, continuation) = AsyncStream.makeStream(of: Element.self, bufferingPolicy: bufferingPolicy)
    let subscription: Subscription
    do {
        subscription = try register { value in continuation.yield(value) }
    } catch {
        continuation.finish()
        throw error
    }
    continuation.onTermination = { _ in
        // Stops deliveries at once; releasing the closure then frees the Rust object, which drops
        // Rust's reference to the observer.
        subscription.cancel()
    }
    return stream
}

/// Counts the stream observers that Rust still holds, so tests can check that ending a stream
/// releases its observer (the generated handle maps are private to Tandem.swift).
enum StreamObservers {
    private static let lock = NSLock()
    private static var count = 0

    /// How many stream observers are alive.
    static var live: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }

    static func add(_ delta: Int) {
        lock.lock()
        count += delta
        lock.unlock()
    }
}

/// Forwards query results to a stream.
final class StreamQueryObserver: QueryObserver {
    private let yield: @Sendable ([Record]) -> Void

    init(_ yield: @escaping @Sendable ([Record]) -> Void) {
        self.yield = yield
        StreamObservers.add(1)
    }

    deinit {
        StreamObservers.add(-1)
    }

    func onResults(records: [Record]) {
        yield(records)
    }
}

/// Forwards one observed record to a stream.
final class StreamRecordObserver: RecordObserver {
    private let yield: @Sendable (Record?) -> Void

    init(_ yield: @escaping @Sendable (Record?) -> Void) {
        self.yield = yield
        StreamObservers.add(1)
    }

    deinit {
        StreamObservers.add(-1)
    }

    func onRecord(record: Record?) {
        yield(record)
    }
}

/// Forwards changed collection names to a stream.
final class StreamChangeListener: ChangeListener {
    private let yield: @Sendable ([String]) -> Void

    init(_ yield: @escaping @Sendable ([String]) -> Void) {
        self.yield = yield
        StreamObservers.add(1)
    }

    deinit {
        StreamObservers.add(-1)
    }

    func onChange(collections: [String]) {
        yield(collections)
    }
}

/// Forwards sync statuses to a stream.
final class StreamSyncStatusListener: SyncStatusListener {
    private let yield: @Sendable (SyncStatus) -> Void

    init(_ yield: @escaping @Sendable (SyncStatus) -> Void) {
        self.yield = yield
        StreamObservers.add(1)
    }

    deinit {
        StreamObservers.add(-1)
    }

    func onSyncStatus(status: SyncStatus) {
        yield(status)
    }
}

/// Forwards auth states to a stream.
final class StreamAuthStateListener: AuthStateListener {
    private let yield: @Sendable (AuthState) -> Void

    init(_ yield: @escaping @Sendable (AuthState) -> Void) {
        self.yield = yield
        StreamObservers.add(1)
    }

    deinit {
        StreamObservers.add(-1)
    }

    func onAuthState(state: AuthState) {
        yield(state)
    }
}

/// Forwards the user's spaces to a stream.
final class StreamSpacesObserver: SpacesObserver {
    private let yield: @Sendable ([Space]) -> Void

    init(_ yield: @escaping @Sendable ([Space]) -> Void) {
        self.yield = yield
        StreamObservers.add(1)
    }

    deinit {
        StreamObservers.add(-1)
    }

    func onSpaces(spaces: [Space]) {
        yield(spaces)
    }
}

/// Forwards pending invitations to a stream.
final class StreamInvitationsObserver: InvitationsObserver {
    private let yield: @Sendable ([Invitation]) -> Void

    init(_ yield: @escaping @Sendable ([Invitation]) -> Void) {
        self.yield = yield
        StreamObservers.add(1)
    }

    deinit {
        StreamObservers.add(-1)
    }

    func onInvitations(invitations: [Invitation]) {
        yield(invitations)
    }
}

/// Forwards the states of one attachment to a stream.
final class StreamAttachmentObserver: AttachmentObserver {
    private let yield: @Sendable (AttachmentState) -> Void

    init(_ yield: @escaping @Sendable (AttachmentState) -> Void) {
        self.yield = yield
        StreamObservers.add(1)
    }

    deinit {
        StreamObservers.add(-1)
    }

    func onState(state: AttachmentState) {
        yield(state)
    }
}
