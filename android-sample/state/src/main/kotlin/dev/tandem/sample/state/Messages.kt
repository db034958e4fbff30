package dev.tandem.sample.state

import dev.tandem.AuthFailure
import dev.tandem.KeyFailure
import dev.tandem.SpaceErrorKind
import dev.tandem.SyncFailure
import dev.tandem.TandemException
import dev.tandem.ValidationReason

/**
 * What to tell the user about a failure. The engine's errors are typed (a sealed class, then a
 * kind), so the text is chosen from the type, never parsed out of a message; the engine's own
 * detail is added where it says something the user can act on (which field is wrong).
 */
object Messages {
    fun of(error: Throwable): String = when (error) {
        is TandemException.Auth -> when (error.kind) {
            AuthFailure.INVALID_CREDENTIALS -> "Wrong email or password."
            AuthFailure.USER_EXISTS -> "An account with this email already exists. Sign in instead."
            AuthFailure.WEAK_PASSWORD -> "Choose a longer password (the server asks for at least 6 characters by default)."
            AuthFailure.INVALID_EMAIL -> "That email address does not look right."
            AuthFailure.RATE_LIMITED -> "Too many attempts. Try again" +
                (error.retryAfterSecs?.let { " in $it s." } ?: " later.")
            AuthFailure.NETWORK -> "Cannot reach the server. Check the server URL and your connection."
            AuthFailure.SERVER -> "The server failed. Try again later."
            AuthFailure.SESSION_EXPIRED -> "Your session ended. Sign in again."
            AuthFailure.NOT_SIGNED_IN -> "You are not signed in."
            AuthFailure.SECURE_STORE -> "The device's secure storage failed."
        }
        is TandemException.Sync -> when (error.kind) {
            SyncFailure.OFFLINE -> "Offline: changes are kept and sync when the server is reachable."
            SyncFailure.PAUSED -> "The server paused sync for now."
            SyncFailure.RATE_LIMITED -> "The server asked to slow down; sync retries by itself."
            SyncFailure.SESSION_EXPIRED -> "Your session ended. Sign in again to sync."
            SyncFailure.NOT_SIGNED_IN -> "Sign in to sync."
            SyncFailure.DISABLED -> "Sync is disabled."
            SyncFailure.BUSY -> "Another process is syncing this account right now."
            SyncFailure.DEADLINE_EXCEEDED -> "Sync ran out of time; it continues next time."
            SyncFailure.SERVER -> "The server failed: ${error.detail}"
            SyncFailure.LOCAL -> "The local store failed: ${error.detail}"
        }
        is TandemException.Validation -> when (error.reason) {
            ValidationReason.READ_ONLY -> "The exercise catalog comes from the server and cannot be changed here."
            ValidationReason.FORBIDDEN -> "View only: you can see this plan but not change it."
            else -> error.field?.let { "$it: ${error.detail}" } ?: error.detail
        }
        is TandemException.Space -> when (error.kind) {
            SpaceErrorKind.NOT_FOUND -> "That shared plan or invitation is gone."
            SpaceErrorKind.FORBIDDEN -> "Only the plan's owners can do that."
            SpaceErrorKind.LAST_OWNER -> "A shared plan needs an owner: make someone else owner first."
            SpaceErrorKind.ALREADY_MEMBER -> "They are already a member."
            SpaceErrorKind.LIMIT_REACHED -> "The server's limit is reached."
            SpaceErrorKind.INVALID_NAME -> "Choose a name of 1 to 200 characters."
        }
        is TandemException.Key -> when (error.kind) {
            KeyFailure.MISSING, KeyFailure.WRONG ->
                "The key that protects this phone's plans is missing or does not match (restored from a backup?). Nothing was deleted."
            KeyFailure.UNAVAILABLE -> "Unlock the phone to open your plans."
        }
        is TandemException.InvalidArgument -> error.detail
        is TandemException.NotFound -> "It was deleted in the meantime."
        is TandemException.Closed -> "The app is switching servers; try again."
        is TandemException -> error.message ?: error.toString()
        else -> error.message ?: error.toString()
    }

    /**
     * Why the last run failed, for the sync indicator's details: from the engine's persisted,
     * typed `lastFailure`; [detail] (the engine's `lastError`) is added where the type alone says
     * too little (a server or store failure).
     */
    fun lastRunFailure(kind: SyncFailure, detail: String?): String = when (kind) {
        SyncFailure.OFFLINE -> "the server could not be reached."
        SyncFailure.PAUSED -> "the server paused sync."
        SyncFailure.RATE_LIMITED -> "the server asked to slow down."
        SyncFailure.SESSION_EXPIRED -> "the session ended; sign in again."
        SyncFailure.NOT_SIGNED_IN -> "nobody was signed in."
        SyncFailure.DISABLED -> "sync is disabled."
        SyncFailure.BUSY -> "another process was syncing this account."
        SyncFailure.DEADLINE_EXCEEDED -> "it ran out of time; it continues next time."
        SyncFailure.SERVER -> "the server failed" + (detail?.let { " ($it)." } ?: ".")
        SyncFailure.LOCAL -> "the local store failed" + (detail?.let { " ($it)." } ?: ".")
    }

    /** The server's reason for refusing a change, in words; [code] names one this app does not know. */
    fun rejection(reason: ValidationReason, code: String): String = when (reason) {
        ValidationReason.INVALID_PAYLOAD -> "The server found the data invalid."
        ValidationReason.INVALID_PARENT -> "What it belonged to was deleted on another device."
        ValidationReason.TOO_LARGE -> "It is too large for the server."
        ValidationReason.UNKNOWN_ENTITY -> "The server does not know this kind of record."
        ValidationReason.INVALID_REFERENCE -> "A record it refers to was deleted on another device."
        ValidationReason.RESTRICTED -> "Other records still refer to it, so it cannot be deleted."
        ValidationReason.UNIQUE_VIOLATION -> "Another record already uses the same key."
        ValidationReason.READ_ONLY -> "The server's catalog cannot be changed here."
        ValidationReason.FORBIDDEN -> "You can no longer change this shared plan (view only, or removed)."
        ValidationReason.SPACE_MISMATCH -> "It belongs to another shared plan."
        ValidationReason.UNKNOWN_SPACE -> "That shared plan is not on this device."
        ValidationReason.ATTACHMENT_MISSING -> "Its photo is not on the server."
        ValidationReason.ATTACHMENT_TOO_LARGE -> "Its photo is too large for the server."
        ValidationReason.QUOTA_EXCEEDED -> "Your storage on the server is full."
        ValidationReason.OTHER -> "Refused by the server ($code)."
    }
}
