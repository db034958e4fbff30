package dev.tandem.sample

import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.activity.enableEdgeToEdge
import androidx.activity.viewModels
import dev.tandem.sample.ui.SampleApp

/** The one activity; everything else is Compose navigation. */
class MainActivity : ComponentActivity() {
    // Activity-wide: the session decides between sign-in and the app, and the sync indicator
    // shows the same state on every screen.
    private val session: SessionViewModel by viewModels { SampleViewModels }
    private val indicator: SyncIndicatorViewModel by viewModels { SampleViewModels }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        enableEdgeToEdge()
        setContent {
            SampleApp(session, indicator)
        }
    }
}
