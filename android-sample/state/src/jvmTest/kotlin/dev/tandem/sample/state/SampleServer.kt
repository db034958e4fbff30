package dev.tandem.sample.state

import java.io.File
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.TimeUnit
import org.junit.jupiter.api.extension.AfterAllCallback
import org.junit.jupiter.api.extension.BeforeAllCallback
import org.junit.jupiter.api.extension.ExtensionContext

/**
 * A real `tandem-server` with the sample schema (its built-in default, `schemas/sample.json`)
 * for one test class, which a test can [stop] and [start] again on the same address and
 * database: that is how the tests take the app offline and back.
 *
 * The bindings' own `TandemServer` fixture cannot serve here: it always loads the bindings
 * tests' schema (no `exercises`, no day titles) and runs until the class ends.
 */
class SampleServer : BeforeAllCallback, AfterAllCallback {
    /** The base URL, fixed for the class (a restart binds the same port). */
    lateinit var url: String
        private set
    private lateinit var dir: Path
    private var process: Process? = null

    override fun beforeAll(context: ExtensionContext) {
        dir = Files.createTempDirectory("tandem-sample-server-")
        url = launch("127.0.0.1:0")
    }

    override fun afterAll(context: ExtensionContext) {
        stop()
        dir.toFile().deleteRecursively()
    }

    /** Stops the server; clients now find it unreachable. */
    fun stop() {
        process?.let { process ->
            process.destroy()
            if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly().waitFor()
        }
        process = null
    }

    /** Starts it again where it was, with the same accounts and data. */
    fun start() {
        check(process == null) { "already running" }
        check(launch(url.removePrefix("http://")) == url) { "the server came back on another address" }
    }

    private fun launch(address: String): String {
        val log = dir.resolve("server-${System.nanoTime()}.log").toFile()
        val builder = ProcessBuilder(binary().toString(), "--addr", address, "--db", "sqlite://${dir.resolve("server.db")}")
            .redirectErrorStream(true)
            .redirectOutput(log)
        // The server reads its configuration from TANDEM_* as well; nothing may leak in from the
        // developer's shell, and the JWT secret must survive a restart (sessions stay valid).
        builder.environment().keys.removeIf { it.startsWith("TANDEM_") }
        builder.environment()["TANDEM_JWT_SECRET"] = "sample-state-tests-secret-0123456789"
        val started = builder.start()
        process = started
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        while (System.nanoTime() < deadline) {
            log.takeIf { it.exists() }?.readLines()?.firstOrNull { it.startsWith("listening on ") }?.let {
                return it.removePrefix("listening on ").trim()
            }
            if (!started.isAlive) break
            Thread.sleep(20)
        }
        started.destroyForcibly()
        process = null
        error("tandem-server did not start:\n${log.readText()}")
    }

    private fun binary(): Path {
        val binary = Path.of(
            System.getProperty("tandem.server.bin")
                ?: "${System.getProperty("user.home")}/.cache/tandem/target/debug/tandem-server",
        )
        if (Files.isExecutable(binary)) return binary
        val root = File(System.getProperty("tandem.repo.root") ?: error("-Dtandem.repo.root is not set"))
        val build = ProcessBuilder("cargo", "build", "-p", "tandem-server").directory(root).inheritIO()
        build.environment()["CARGO_TARGET_DIR"] = binary.parent.parent.toString()
        check(build.start().waitFor() == 0) { "cargo build -p tandem-server failed" }
        return binary
    }
}
