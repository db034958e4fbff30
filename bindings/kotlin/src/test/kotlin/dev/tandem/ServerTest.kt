package dev.tandem

import java.nio.file.Path
import java.util.UUID
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.io.TempDir

/** The password of every test account. */
const val PASSWORD = "correct horse battery staple"

/** A new account's email address. */
fun newEmail(): String = "kt-${UUID.randomUUID()}@example.com"

/**
 * The setup the tests against a real server share: devices opened in this test's temporary
 * folder against [server] (the subclass's `@RegisterExtension` [TandemServer], one per class) and
 * closed after each test.
 *
 *     class MyTest : ServerTest(server) {
 *         companion object { @JvmField @RegisterExtension val server = TandemServer() }
 *     }
 */
abstract class ServerTest(private val server: TandemServer) {
    @TempDir
    lateinit var dir: Path
    private val devices = mutableListOf<Tandem>()

    @AfterEach
    fun closeDevices() {
        devices.forEach(Tandem::close)
    }

    /** A device named [name] (its folder in [dir]), signed in to nothing; closed after the test. */
    protected fun device(name: String, policy: ConflictPolicy? = null): Tandem =
        server.device(dir.resolve(name), policy = policy).also(devices::add)

    /** An engine opened here without a server; closed after the test. */
    protected fun localDevice(name: String): Tandem = openTandem(dir.resolve(name)).also(devices::add)

    /** Devices [a] and [b] (named so), signed up and in to one new account, whose email it returns. */
    protected suspend fun oneAccount(a: Tandem, b: Tandem): String {
        val email = newEmail()
        a.signUp(email, PASSWORD)
        b.signIn(email, PASSWORD)
        return email
    }
}
