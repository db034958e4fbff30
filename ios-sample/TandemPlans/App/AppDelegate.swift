// Launch-time wiring that SwiftUI's App has no hook for.

import UIKit

/// Opens the engine and installs the platform triggers at launch, before any scene exists:
/// a background launch (for BGAppRefreshTask) has no UI but still needs both.
@MainActor
final class AppDelegate: NSObject, UIApplicationDelegate {
    private let connectivity = ConnectivityMonitor()

    func application(
        _ application: UIApplication,
        didFinishLaunchingWithOptions launchOptions: [UIApplication.LaunchOptionsKey: Any]? = nil
    ) -> Bool {
        // First, so that what the engine does from its first call on shows in the log.
        EngineLog.install()
        let model = AppModel.shared
        model.start()
        BackgroundSync.register(model: model)
        connectivity.start { online in
            model.connectivityChanged(online: online)
        }
        return true
    }
}
