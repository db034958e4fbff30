// "edited 2 min ago" from a record's `editedAt`: when the user last edited it, on whichever
// device (Tandem's edit time, not when this device's store last wrote it, which a pull also does).

import Foundation

enum EditedAgo {
    /// The label for `editedAt` seen at `now`; `nil` when the record has no edit time.
    static func text(_ editedAt: Date?, now: Date = Date()) -> String? {
        guard let editedAt else { return nil }
        // A device's clock may run a little behind the editing one's: never "in the future".
        let seconds = max(0, Int(now.timeIntervalSince(editedAt)))
        let minute = 60
        let hour = 60 * minute
        let day = 24 * hour
        if seconds < minute {
            return "edited just now"
        } else if seconds < hour {
            return "edited \(seconds / minute) min ago"
        } else if seconds < day {
            return "edited \(seconds / hour) h ago"
        } else if seconds < 2 * day {
            return "edited yesterday"
        }
        return "edited \(seconds / day) days ago"
    }
}
