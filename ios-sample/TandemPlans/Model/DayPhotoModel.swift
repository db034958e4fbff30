// A plan day's photo: attached from the photo library, uploaded by the next sync, shown on every
// device of the account once it has synced.

import Foundation
import Observation
import Tandem

/// Live state of a day's photo: the reference in the day's `photo` field, where its bytes are
/// (`AttachmentState`: on this device only, uploading n of N, uploaded, on the server only,
/// downloading, failed), and the local file once there is one.
@MainActor
@Observable
final class DayPhotoModel {
    /// The field of `plan_days` (and `shared_plan_days`) that holds the photo.
    static let field = "photo"

    private(set) var reference: AttachmentRef?
    private(set) var state: AttachmentState?
    /// The photo's file on this device, once downloaded (or attached here).
    private(set) var fileURL: URL?
    var errorMessage: String?

    private let tandem: Tandem
    let collection: String
    let dayId: String
    /// The task following the current reference's state; replaced when the photo changes.
    private var stateTask: Task<Void, Never>?

    init(tandem: Tandem, dayId: String, collection: String = PlanDay.collection) {
        self.tandem = tandem
        self.dayId = dayId
        self.collection = collection
    }

    /// What to write under the photo: upload progress, a download, or why the upload failed.
    var caption: String? {
        switch state {
        case let .uploading(sent, total):
            return "Uploading \(Self.percent(sent, of: total)) %"
        case .local:
            return "Waiting to upload"
        case let .downloading(received, total):
            return "Downloading \(Self.percent(received, of: total)) %"
        case let .failed(reason, _):
            switch reason {
            case .tooLarge:
                return "Upload failed: the photo is too large for the server."
            case .quotaExceeded:
                return "Upload failed: your storage on the server is full."
            case .hashMismatch, .fileMissing, .other:
                return "Upload failed; see Conflicts."
            }
        case .uploaded, .remote, nil:
            return nil
        }
    }

    static func percent(_ done: UInt64, of total: UInt64) -> Int {
        total == 0 ? 100 : Int(done * 100 / total)
    }

    /// Follows the day: each time its photo changes, follows the new photo's state and loads its
    /// file (downloading it when it is only on the server). Runs until the calling task ends.
    func run() async {
        do {
            try await followRecord(tandem, collection: collection, id: dayId) { _ in
                self.refresh()
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
        stateTask?.cancel()
    }

    private func refresh() {
        let current: AttachmentRef?
        do {
            current = try tandem.attachmentRef(collection: collection, id: dayId, field: Self.field)
        } catch {
            // The day is gone (deleted here or on another device): nothing to show.
            current = nil
        }
        guard current != reference else {
            return
        }
        reference = current
        fileURL = nil
        state = nil
        stateTask?.cancel()
        guard let current else {
            return
        }
        stateTask = Task { [weak self] in
            await self?.follow(current)
        }
    }

    /// Shows the photo's state as it changes, and loads its file at the same time (on this
    /// device already, or downloaded: the state stream shows the download's progress).
    private func follow(_ reference: AttachmentRef) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.followState(reference) }
            group.addTask { await self.load(reference) }
        }
    }

    private func followState(_ reference: AttachmentRef) async {
        do {
            for await state in try tandem.attachmentStateStream(hash: reference.hash) {
                self.state = state
            }
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    private func load(_ reference: AttachmentRef) async {
        do {
            let path = try await tandem.attachment(reference: reference)
            if !Task.isCancelled {
                fileURL = URL(fileURLWithPath: path)
            }
        } catch {
            // Cancelled when the photo changed or the screen closed: the partial download stays
            // for the next try.
            if !Task.isCancelled {
                errorMessage = ErrorText.describe(error)
            }
        }
    }

    /// Attaches picked image data as the day's photo. The engine copies it and uploads it with
    /// the next sync; the state goes from local through uploading to uploaded.
    func attach(_ data: Data, contentType: String) async {
        do {
            _ = try await tandem.attachBytes(
                collection: collection, id: dayId, field: Self.field, bytes: data,
                contentType: contentType, name: nil
            )
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }

    /// Takes the photo off the day (the file leaves the device once the change is synced).
    func remove() {
        do {
            _ = try tandem.patch(collection: collection, id: dayId, patchJson: #"{"photo": null}"#)
        } catch {
            errorMessage = ErrorText.describe(error)
        }
    }
}
