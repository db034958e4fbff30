// User-facing sentences for the engine's typed errors.

import Foundation
import Tandem

/// Turns errors into sentences for alerts and inline messages. `TandemError`'s own description
/// is the Swift reflection of the enum, which is for logs, not people.
enum ErrorText {
    static func describe(_ error: Error) -> String {
        guard let error = error as? TandemError else {
            return error.localizedDescription
        }
        switch error {
        case let .InvalidArgument(detail):
            return "Invalid input: \(detail)"
        case .Validation(.readOnly, _, _, _, _):
            return "The exercise catalog comes from the server and cannot be changed here."
        case .Validation(.forbidden, _, _, _, _):
            return "View only: you can see this plan but not change it."
        case let .Validation(_, field, _, _, detail):
            if let field, !field.isEmpty {
                return "“\(field)” is not valid: \(detail)"
            }
            return detail
        case .NotFound:
            return "This item no longer exists; it may have been deleted on another device."
        case let .Schema(detail):
            return "The data on this device does not fit the app's schema: \(detail)"
        case let .Storage(detail):
            return "The local database failed: \(detail)"
        case let .Key(kind, _):
            switch kind {
            case .missing, .wrong:
                return "The key that protects this iPhone's plans is missing or does not match (restored from a backup?). Nothing was deleted."
            case .unavailable:
                return "Unlock your iPhone to open your plans."
            }
        case .AlreadyOpen:
            return "The local database is still in use; try again in a moment."
        case .Closed:
            return "The local database was closed; try again."
        case let .Auth(kind, detail, retryAfterSecs):
            return describe(kind, detail: detail, retryAfterSecs: retryAfterSecs)
        case let .Sync(kind, detail, retryAfterSecs):
            return describe(kind, detail: detail, retryAfterSecs: retryAfterSecs)
        case let .Internal(detail):
            return "Something went wrong inside Tandem: \(detail)"
        case let .Space(kind, _):
            return describe(kind)
        case let .Attachment(kind, _):
            switch kind {
            case .notFound:
                return "This photo is no longer on the server."
            case .corrupt:
                return "The photo arrived damaged; try again."
            case .io:
                return "The photo could not be saved on this device (is it full?)."
            }
        }
    }

    private static func describe(_ kind: SpaceErrorKind) -> String {
        switch kind {
        case .notFound:
            return "That shared plan or invitation is gone."
        case .forbidden:
            return "Only the plan's owners can do that."
        case .lastOwner:
            return "A shared plan needs an owner: make someone else owner first."
        case .alreadyMember:
            return "They are already a member."
        case .limitReached:
            return "The server's limit is reached."
        case .invalidName:
            return "Choose a name of 1 to 200 characters."
        }
    }

    private static func describe(_ kind: AuthFailure, detail: String, retryAfterSecs: UInt64?) -> String {
        switch kind {
        case .invalidCredentials:
            return "Wrong email or password."
        case .userExists:
            return "An account with this email exists already; sign in instead."
        case .weakPassword:
            return "Choose a stronger password. \(detail)"
        case .invalidEmail:
            return "That email address is not valid."
        case .rateLimited:
            return "Too many attempts." + retryHint(retryAfterSecs)
        case .network:
            return "Cannot reach the server. Check the address and that the server is running."
        case .server:
            return "The server failed: \(detail)"
        case .sessionExpired:
            return "Your session expired; sign in again."
        case .notSignedIn:
            return "You are not signed in."
        case .secureStore:
            return "The Keychain refused to store the session: \(detail)"
        }
    }

    private static func describe(_ kind: SyncFailure, detail: String, retryAfterSecs: UInt64?) -> String {
        switch kind {
        case .offline:
            return "Offline: the server cannot be reached. Changes stay on this device until it can."
        case .paused:
            return "The server paused sync." + retryHint(retryAfterSecs)
        case .rateLimited:
            return "The server asked to slow down." + retryHint(retryAfterSecs)
        case .sessionExpired:
            return "Your session expired; sign in again to sync."
        case .notSignedIn:
            return "Sign in to sync."
        case .disabled:
            return "Sync is disabled."
        case .busy:
            return "Another process is syncing this account right now."
        case .deadlineExceeded:
            return "Sync ran out of time; it continues next time."
        case .server:
            return "The server failed: \(detail)"
        case .local:
            return "The local database failed during sync: \(detail)"
        }
    }

    /// Why the last sync run failed, for the sync indicator: from the engine's persisted, typed
    /// `SyncStatus.lastFailure`, so it reads the same after a relaunch. `detail` (the status's
    /// `lastError`) is added for the failures whose kind alone says too little.
    static func lastRunFailure(_ kind: SyncFailure, detail: String?) -> String {
        let suffix = detail.map { " (\($0))" } ?? ""
        switch kind {
        case .offline:
            return "The server could not be reached."
        case .paused:
            return "The server paused sync."
        case .rateLimited:
            return "The server asked to slow down."
        case .sessionExpired:
            return "The session expired; sign in again."
        case .notSignedIn:
            return "Nobody was signed in."
        case .disabled:
            return "Sync is disabled."
        case .busy:
            return "Another process was syncing this account."
        case .deadlineExceeded:
            return "It ran out of time; it continues next time."
        case .server:
            return "The server failed\(suffix)."
        case .local:
            return "The local database failed\(suffix)."
        }
    }

    private static func retryHint(_ seconds: UInt64?) -> String {
        guard let seconds else {
            return ""
        }
        return " Try again in \(seconds) s."
    }

    /// Why the server refused a change, in words; `code` names a reason this app does not know.
    static func rejectionReason(_ reason: ValidationReason, code: String) -> String {
        switch reason {
        case .invalidPayload:
            return "The server found the document invalid."
        case .invalidParent:
            return "Its parent does not exist on the server (it may have been deleted)."
        case .tooLarge:
            return "The document is too large."
        case .unknownEntity:
            return "The server does not know this collection."
        case .invalidReference:
            return "A record it refers to does not exist on the server (it may have been deleted)."
        case .restricted:
            return "Other records still refer to it, so it cannot be deleted."
        case .uniqueViolation:
            return "Another record already uses the same key."
        case .readOnly:
            return "The server's catalog cannot be changed here."
        case .forbidden:
            return "You can no longer change this shared plan (view only, or removed)."
        case .spaceMismatch:
            return "It belongs to another shared plan."
        case .unknownSpace:
            return "That shared plan is not on this device."
        case .attachmentMissing:
            return "Its photo is not on the server."
        case .attachmentTooLarge:
            return "Its photo is too large for the server."
        case .quotaExceeded:
            return "Your storage on the server is full."
        case .other:
            return code.isEmpty ? "The server refused the change." : "The server refused the change (\(code))."
        }
    }
}
