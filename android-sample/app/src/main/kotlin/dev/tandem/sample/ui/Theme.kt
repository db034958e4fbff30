package dev.tandem.sample.ui

import androidx.compose.foundation.isSystemInDarkTheme
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.darkColorScheme
import androidx.compose.material3.lightColorScheme
import androidx.compose.runtime.Composable
import androidx.compose.ui.graphics.Color

private val Green = Color(0xFF2E5E4E)
private val Mint = Color(0xFF7FC8A9)

/** Material 3 with the app's two colours (the launcher icon's), light or dark as the system is. */
@Composable
fun SampleTheme(content: @Composable () -> Unit) {
    val colors = if (isSystemInDarkTheme()) {
        darkColorScheme(primary = Mint, secondary = Green)
    } else {
        lightColorScheme(primary = Green, secondary = Mint)
    }
    MaterialTheme(colorScheme = colors, content = content)
}
