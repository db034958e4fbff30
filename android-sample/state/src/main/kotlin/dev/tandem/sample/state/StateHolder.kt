package dev.tandem.sample.state

import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow

/**
 * What every screen's state holder shares: the [scope] its flows live in (a ViewModel's scope in
 * the app, a test's scope on the JVM) and a one-line [message] for the last failed action, which
 * the screen shows until [dismissMessage].
 */
abstract class StateHolder(protected val scope: CoroutineScope) {
    private val _message = MutableStateFlow<String?>(null)

    /** Why the last action failed, in words; null when there is nothing to say. */
    val message: StateFlow<String?> = _message.asStateFlow()

    fun dismissMessage() {
        _message.value = null
    }

    /**
     * Runs an action, turning a failure into [message] and null. Cancellation is not a failure
     * and goes on up.
     */
    protected suspend fun <T> attempt(action: suspend () -> T): T? =
        try {
            action().also { _message.value = null }
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            _message.value = Messages.of(e)
            null
        }
}
