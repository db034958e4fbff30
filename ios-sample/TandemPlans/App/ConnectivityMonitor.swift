// Network reachability for the engine's connectivity trigger.

import Foundation
import Network

/// Reports whether the device has a usable network path, on the main actor, whenever
/// NWPathMonitor sees a change (and once at start). Going online lets the engine retry at once
/// instead of waiting out its backoff.
final class ConnectivityMonitor {
    private let monitor = NWPathMonitor()
    private let queue = DispatchQueue(label: "dev.tandem.plans.connectivity")

    func start(onChange: @escaping @MainActor (Bool) -> Void) {
        monitor.pathUpdateHandler = { path in
            let online = path.status == .satisfied
            Task { @MainActor in
                onChange(online)
            }
        }
        monitor.start(queue: queue)
    }

    deinit {
        monitor.cancel()
    }
}
