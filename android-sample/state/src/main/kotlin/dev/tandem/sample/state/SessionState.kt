package dev.tandem.sample.state

import dev.tandem.AuthState
import dev.tandem.User
import dev.tandem.authStateAsFlow
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.SharingStarted
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.stateIn
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.withContext

/** Who is using the app; decides between the sign-in screen and the rest. */
sealed interface Session {
    /** The engine has not reported its auth state yet (the first instant after launch). */
    data object Starting : Session

    /** Nobody is signed in. [expiredEmail] is set when a session ended on its own. */
    data class SignedOut(val expiredEmail: String? = null) : Session

    data class SignedIn(val user: User) : Session
}

/** Signing in to an existing account, or creating one. */
enum class SignInMode { SIGN_IN, SIGN_UP }

/** Everything the sign-in screen shows. */
data class SignInForm(
    val serverUrl: String,
    val email: String,
    val password: String = "",
    val mode: SignInMode = SignInMode.SIGN_IN,
    val busy: Boolean = false,
    val error: String? = null,
) {
    /** Whether the submit button does anything. */
    val canSubmit: Boolean get() = !busy && serverUrl.isNotBlank() && email.isNotBlank() && password.isNotEmpty()
}

/**
 * The session (from the engine's auth state, so a sign-out anywhere, or an expired session,
 * shows at once) and the sign-in form, whose server URL is editable: submitting with another
 * URL reopens the engine on that server first.
 */
class SessionStateHolder(
    private val host: TandemHost,
    private val settings: SettingsStore,
    scope: CoroutineScope,
    private val io: CoroutineDispatcher = Dispatchers.IO,
) {
    /** The current session. */
    val session: StateFlow<Session> = host.live { it.authStateAsFlow() }
        .map { state ->
            when (state) {
                is AuthState.SignedIn -> Session.SignedIn(state.user)
                is AuthState.SessionExpired -> Session.SignedOut(expiredEmail = state.user.email)
                AuthState.SignedOut -> Session.SignedOut()
            }
        }
        .stateIn(scope, SharingStarted.Eagerly, Session.Starting)

    private val _form = MutableStateFlow(
        SignInForm(serverUrl = settings.settings.value.serverUrl, email = settings.settings.value.lastEmail),
    )

    /** The sign-in form. */
    val form: StateFlow<SignInForm> = _form.asStateFlow()

    fun setServerUrl(url: String) = _form.update { it.copy(serverUrl = url, error = null) }

    fun setEmail(email: String) = _form.update { it.copy(email = email, error = null) }

    fun setPassword(password: String) = _form.update { it.copy(password = password, error = null) }

    fun setMode(mode: SignInMode) = _form.update { it.copy(mode = mode, error = null) }

    /**
     * Switches the server when the URL changed, then signs in or up. Returns whether it worked;
     * on failure [form] carries the reason. The password is cleared on success only, so a typo
     * in the email does not make the user type the password again.
     */
    suspend fun submit(): Boolean {
        val form = _form.value
        if (!form.canSubmit) return false
        _form.update { it.copy(busy = true, error = null) }
        return try {
            withContext(io) { host.changeServer(form.serverUrl) }
            val email = form.email.trim()
            when (form.mode) {
                SignInMode.SIGN_IN -> host.engine.signIn(email, form.password)
                SignInMode.SIGN_UP -> host.engine.signUp(email, form.password)
            }
            settings.update { it.copy(lastEmail = email) }
            _form.update { it.copy(busy = false, password = "", serverUrl = settings.settings.value.serverUrl) }
            true
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            _form.update { it.copy(busy = false, error = Messages.of(e)) }
            false
        }
    }
}
