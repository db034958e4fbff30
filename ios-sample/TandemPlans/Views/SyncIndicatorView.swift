// The sync indicator: synced / syncing / offline / error, pending changes, last sync or the last
// run's failure; tap to sync.

import SwiftUI

extension View {
    /// Pins the sync indicator above the bottom edge. Applied to a NavigationStack, it stays
    /// under every screen pushed onto it.
    func syncIndicator() -> some View {
        safeAreaInset(edge: .bottom, spacing: 0) {
            SyncIndicatorView()
        }
    }
}

/// A compact bar showing the sync state. Tapping it syncs now, or offers sign-in when the
/// session expired.
struct SyncIndicatorView: View {
    @Environment(AppModel.self) private var app

    var body: some View {
        let model = app.syncIndicator
        let display = model.display
        Button(action: tap) {
            HStack(spacing: 10) {
                Image(systemName: display.symbol)
                    .font(.title3)
                    .foregroundStyle(tint(for: display))
                    .symbolEffect(.pulse, isActive: display == .syncing || display == .starting)
                VStack(alignment: .leading, spacing: 2) {
                    Text(display.title)
                        .font(.subheadline.weight(.semibold))
                    detail(model: model, display: display)
                        .font(.caption)
                        .foregroundStyle(.secondary)
                        .lineLimit(1)
                }
                Spacer(minLength: 8)
                if let pending = model.pendingText {
                    Text(pending)
                        .font(.caption.weight(.medium).monospacedDigit())
                        .padding(.horizontal, 8)
                        .padding(.vertical, 3)
                        .background(Color.orange.opacity(0.2), in: Capsule())
                }
            }
            .padding(.horizontal, 14)
            .padding(.vertical, 8)
            .background(.regularMaterial, in: RoundedRectangle(cornerRadius: 14, style: .continuous))
            .contentShape(Rectangle())
        }
        .buttonStyle(.plain)
        .padding(.horizontal, 12)
        .padding(.bottom, 6)
        .accessibilityElement(children: .combine)
        .accessibilityHint(display == .sessionExpired ? "Signs in again" : "Syncs now")
    }

    @ViewBuilder
    private func detail(model: SyncIndicatorModel, display: SyncIndicatorModel.Display) -> some View {
        if let notice = model.notice {
            Text(notice)
        } else if let message = display.errorMessage {
            Text(message)
        } else if let failure = model.lastFailureText, let at = model.lastRunAt {
            // The last run failed (maybe before this launch: the engine keeps its outcome), e.g.
            // "Failed 5 minutes ago: The server could not be reached."
            TimelineView(.everyMinute) { _ in
                Text("Failed " + at.formatted(.relative(presentation: .named)) + ": " + failure)
            }
        } else if let last = model.lastSyncedAt {
            // Re-rendered every minute so "2 minutes ago" stays true.
            TimelineView(.everyMinute) { _ in
                Text("Last sync " + last.formatted(.relative(presentation: .named)))
            }
        } else if display == .off {
            Text("Tap to sync once")
        } else {
            Text("Not synced yet · tap to sync")
        }
    }

    private func tint(for display: SyncIndicatorModel.Display) -> Color {
        switch display {
        case .synced: return .green
        case .syncing, .starting: return .blue
        case .offline, .off: return .gray
        case .paused, .signedOut, .sessionExpired: return .orange
        case .error: return .red
        }
    }

    private func tap() {
        if app.syncIndicator.display == .sessionExpired {
            app.isReauthenticating = true
            return
        }
        Task {
            await app.syncIndicator.syncNow()
        }
    }
}
