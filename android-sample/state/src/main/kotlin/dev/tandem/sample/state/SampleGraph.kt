package dev.tandem.sample.state

import java.io.File

/**
 * The app's long-lived objects, built once per process: settings, the engine host, the
 * repositories and the platform signal handler. Screen state holders are made per screen from
 * these (in the app, by each ViewModel with its own scope).
 */
class SampleGraph(
    options: EngineOptions,
    /** The settings file (outside [EngineOptions.dataDir], which the engine owns). */
    settingsFile: File,
    /**
     * The settings of a first launch: the server used until the user picks another on the
     * sign-in screen (the emulator's host in the app), automatic sync on.
     */
    defaults: AppSettings,
) : AutoCloseable {
    val settings = SettingsStore(settingsFile, defaults)
    val host = TandemHost(options, settings)
    val plans = PlanRepository(host)
    val exercises = ExerciseRepository(host)
    val spaces = SpacesRepository(host)
    val platform = PlatformSync(host, settings)

    /** Shuts the engine down (stops sync and observers). */
    override fun close() = host.close()
}
