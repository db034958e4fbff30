// The app's entry point: one window, the app model in the environment, and scene phase changes
// passed on to the engine.

import SwiftUI

@main
struct TandemPlansApp: App {
    /// UIKit's launch hook registers the background task before launch ends, as
    /// BGTaskScheduler requires, also when the system launches the app in the background.
    @UIApplicationDelegateAdaptor(AppDelegate.self) private var appDelegate
    @Environment(\.scenePhase) private var scenePhase

    var body: some Scene {
        WindowGroup {
            RootView()
                .environment(AppModel.shared)
        }
        .onChange(of: scenePhase) { _, phase in
            switch phase {
            case .active:
                AppModel.shared.appBecameActive()
            case .background:
                // Each refresh request is one-shot: ask for the next one whenever the app
                // leaves the screen.
                BackgroundSync.schedule()
            default:
                break
            }
        }
    }
}

extension AppModel {
    /// The app's one model, shared by the UI, the app delegate and the background task.
    @MainActor static let shared = AppModel()
}
