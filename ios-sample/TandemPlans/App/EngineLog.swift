// The engine's log lines in the unified log (Console.app, `log stream`), subsystem
// `dev.tandem.plans`, category `engine`.

import os
import Tandem

/// Forwards the engine's log lines to `os.Logger`. Tandem calls `log` on a thread of its own, so
/// a slow log never holds sync up. The engine never logs tokens, passwords, emails or record
/// contents (ids, collection names, counts and error kinds only), so lines are public.
final class EngineLog: LogSink {
    private let logger = Logger(subsystem: "dev.tandem.plans", category: "engine")

    /// Installs the sink: debug builds see the engine's debug lines, release builds info and up.
    static func install() {
        #if DEBUG
        setLogSink(sink: EngineLog(), level: .debug)
        #else
        setLogSink(sink: EngineLog(), level: .info)
        #endif
    }

    func log(level: LogLevel, target: String, message: String) {
        switch level {
        case .error:
            logger.error("\(target, privacy: .public): \(message, privacy: .public)")
        case .warn:
            logger.warning("\(target, privacy: .public): \(message, privacy: .public)")
        case .info:
            logger.info("\(target, privacy: .public): \(message, privacy: .public)")
        case .debug:
            logger.debug("\(target, privacy: .public): \(message, privacy: .public)")
        case .trace:
            logger.trace("\(target, privacy: .public): \(message, privacy: .public)")
        }
    }
}
