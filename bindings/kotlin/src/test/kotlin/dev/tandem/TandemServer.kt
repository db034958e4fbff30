package dev.tandem

import java.io.File
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.TimeUnit
import org.junit.jupiter.api.extension.AfterAllCallback
import org.junit.jupiter.api.extension.BeforeAllCallback
import org.junit.jupiter.api.extension.ExtensionContext

/**
 * A real `tandem-server` (the workspace's binary, SQLite backend) for one test class, with
 * [schema] (the tests' [SCHEMA] by default; `null` for the server's built-in sample schema,
 * `schemas/sample.json`). Register it as a static extension, so one server serves the whole class
 * (each test signs up its own account, so tests do not see each other's data):
 *
 * ```
 * companion object {
 *     @JvmField @RegisterExtension val server = TandemServer()
 * }
 * ```
 *
 * A test can [stop] it and [start] it again on the same address and database, to take its
 * devices offline and back. The binary is `-Dtandem.server.bin` (set by the pom to
 * `$CARGO_TARGET_DIR/debug/tandem-server`); when it is missing it is built with
 * `cargo build -p tandem-server`, as the Python tests do. The bindings publish this fixture in
 * their test-jar; the Android sample's state tests use it too.
 */
class TandemServer(
    private val schema: String? = SCHEMA,
    /** The server's admin token (`TANDEM_ADMIN_TOKEN`, 32 bytes or more), for public collections. */
    val adminToken: String? = null,
) : BeforeAllCallback, AfterAllCallback {
    /** The server's base URL (`http://127.0.0.1:PORT`), known once the class's tests start. */
    lateinit var url: String
        private set
    private var process: Process? = null
    private lateinit var dir: Path

    override fun beforeAll(context: ExtensionContext) {
        dir = Files.createTempDirectory("tandem-server-")
        url = launch("127.0.0.1:0")
    }

    override fun afterAll(context: ExtensionContext) {
        stop()
        dir.toFile().deleteRecursively()
    }

    /** Stops the server; its devices now find it unreachable. */
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
        val command = mutableListOf(
            binary().toString(), "--addr", address, "--db", "sqlite://${dir.resolve("server.db")}",
        )
        if (schema != null) {
            val file = dir.resolve("schema.json").also { Files.writeString(it, schema) }
            command += listOf("--schema", file.toString())
        }
        // stdout and stderr go to a file rather than a pipe: nobody has to keep draining a pipe
        // (a full one would stall the server), and no reader thread skews the thread counts of
        // LifecycleTest. The file is also what a failure message shows.
        val log = dir.resolve("server-${System.nanoTime()}.log").toFile()
        val builder = ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log)
        // The server reads its whole configuration from TANDEM_* too: none may leak in from the
        // developer's shell. The JWT secret is fixed so that sessions outlive a restart.
        builder.environment().keys.removeIf { it.startsWith("TANDEM_") }
        builder.environment()["TANDEM_JWT_SECRET"] = "kotlin-binding-tests-secret-0123456789"
        if (adminToken != null) builder.environment()["TANDEM_ADMIN_TOKEN"] = adminToken
        val started = builder.start().also { process = it }
        return awaitUrl(started, log)
    }

    /**
     * A device: an engine in [dataDir] syncing with this server. Tokens go to an
     * [InMemorySecureStore] (never the machine's keyring); realtime pokes are off so that only
     * the tests' explicit `syncNow` calls move data, which keeps every assertion deterministic.
     */
    fun device(
        dataDir: Path,
        secureStore: SecureStore = InMemorySecureStore(),
        policy: ConflictPolicy? = null,
    ): Tandem =
        Tandem.open(
            TandemConfig(
                dataDir = dataDir.toString(),
                schemaJson = schema ?: error("device() needs the schema's text; pass it to TandemServer"),
                serverUrl = url,
                sync = SyncConfig(realtime = false, conflictPolicy = policy),
                secureStore = secureStore,
            ),
        )

    /**
     * Writes public records as the server's administrator (`POST /admin/v1/public/write`);
     * [writesJson] is the JSON array of `{"collection", "id", "doc"}`. Needs [adminToken].
     */
    fun adminWrite(writesJson: String) {
        val token = adminToken ?: error("adminWrite needs the server's adminToken")
        val request = java.net.http.HttpRequest.newBuilder(java.net.URI.create("$url/admin/v1/public/write"))
            .header("Authorization", "Bearer $token")
            .header("Content-Type", "application/json")
            .POST(java.net.http.HttpRequest.BodyPublishers.ofString("{\"writes\": $writesJson}"))
            .build()
        val response = java.net.http.HttpClient.newHttpClient()
            .send(request, java.net.http.HttpResponse.BodyHandlers.ofString())
        check(response.statusCode() == 200) { "admin write failed: ${response.statusCode()} ${response.body()}" }
    }

    private fun awaitUrl(process: Process, log: File): String {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        while (System.nanoTime() < deadline) {
            val line = log.takeIf { it.exists() }?.readLines()?.firstOrNull { it.startsWith("listening on ") }
            if (line != null) return line.removePrefix("listening on ").trim()
            if (!process.isAlive) break
            Thread.sleep(20)
        }
        process.destroyForcibly()
        this.process = null
        error("tandem-server did not start (exit ${runCatching { process.exitValue() }.getOrNull()}):\n${log.readText()}")
    }

    private fun binary(): Path {
        val binary = Path.of(
            System.getProperty("tandem.server.bin")
                ?: "${System.getProperty("user.home")}/.cache/tandem/target/debug/tandem-server",
        )
        if (Files.isExecutable(binary)) return binary
        val root = File(System.getProperty("tandem.repo.root") ?: error("-Dtandem.repo.root is not set"))
        val build = ProcessBuilder("cargo", "build", "-p", "tandem-server").directory(root).inheritIO()
        // Build where the tests look: <target>/debug/tandem-server.
        build.environment()["CARGO_TARGET_DIR"] = binary.parent.parent.toString()
        check(build.start().waitFor() == 0) { "cargo build -p tandem-server failed" }
        return binary
    }
}

/**
 * A [SecureStore] that keeps tokens in memory, for tests only: it is not secure, and a device
 * using it forgets its session when the process ends. It keeps the tests away from the machine's
 * keyring (which CI machines may not have, and which developers' sessions must not see).
 */
class InMemorySecureStore : SecureStore {
    private val values = ConcurrentHashMap<String, String>()

    override fun get(key: String): String? = values[key]

    override fun set(key: String, value: String) {
        values[key] = value
    }

    override fun delete(key: String) {
        values.remove(key)
    }

    /** The names stored now. */
    fun names(): Set<String> = values.keys.toSet()
}
