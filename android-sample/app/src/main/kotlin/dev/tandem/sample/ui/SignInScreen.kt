package dev.tandem.sample.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.imePadding
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.safeDrawingPadding
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.foundation.verticalScroll
import androidx.compose.material3.Button
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.FilterChip
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.text.input.PasswordVisualTransformation
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.tandem.sample.BuildConfig
import dev.tandem.sample.SessionViewModel
import dev.tandem.sample.state.SignInMode

/**
 * Sign in or create an account, on the server in the editable URL field (the emulator's host
 * by default in debug builds). Submitting with another URL moves the app to that server.
 */
@Composable
fun SignInScreen(viewModel: SessionViewModel, expiredEmail: String?) {
    val form by viewModel.holder.form.collectAsStateWithLifecycle()
    Column(
        modifier = Modifier
            .fillMaxSize()
            .safeDrawingPadding()
            .imePadding()
            .verticalScroll(rememberScrollState())
            .padding(24.dp),
        verticalArrangement = Arrangement.spacedBy(12.dp),
    ) {
        Text("Tandem Plans", style = MaterialTheme.typography.headlineMedium)
        Text(
            "Training plans on every device, offline first.",
            style = MaterialTheme.typography.bodyMedium,
        )
        if (expiredEmail != null) {
            Text(
                "The session of $expiredEmail ended. Sign in again; changes made meanwhile are kept.",
                color = MaterialTheme.colorScheme.error,
            )
        }
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            FilterChip(
                selected = form.mode == SignInMode.SIGN_IN,
                onClick = { viewModel.holder.setMode(SignInMode.SIGN_IN) },
                label = { Text("Sign in") },
            )
            FilterChip(
                selected = form.mode == SignInMode.SIGN_UP,
                onClick = { viewModel.holder.setMode(SignInMode.SIGN_UP) },
                label = { Text("Create account") },
            )
        }
        OutlinedTextField(
            value = form.serverUrl,
            onValueChange = viewModel.holder::setServerUrl,
            label = { Text("Server URL") },
            supportingText = {
                Text(
                    if (BuildConfig.DEBUG) {
                        "Emulator: http://10.0.2.2:8787 reaches tandem-server on your computer"
                    } else {
                        "HTTPS only"
                    },
                )
            },
            singleLine = true,
            keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.Uri),
            modifier = Modifier.fillMaxWidth(),
        )
        OutlinedTextField(
            value = form.email,
            onValueChange = viewModel.holder::setEmail,
            label = { Text("Email") },
            singleLine = true,
            keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.Email),
            modifier = Modifier.fillMaxWidth(),
        )
        OutlinedTextField(
            value = form.password,
            onValueChange = viewModel.holder::setPassword,
            label = { Text("Password") },
            singleLine = true,
            visualTransformation = PasswordVisualTransformation(),
            keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.Password),
            modifier = Modifier.fillMaxWidth(),
        )
        form.error?.let { Text(it, color = MaterialTheme.colorScheme.error) }
        Button(
            onClick = { viewModel.act { submit() } },
            enabled = form.canSubmit,
            modifier = Modifier.fillMaxWidth(),
        ) {
            if (form.busy) {
                CircularProgressIndicator(strokeWidth = 2.dp)
            } else {
                Text(if (form.mode == SignInMode.SIGN_IN) "Sign in" else "Create account")
            }
        }
    }
}
