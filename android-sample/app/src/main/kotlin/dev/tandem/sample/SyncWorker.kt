package dev.tandem.sample

import android.content.Context
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.NetworkType
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import dev.tandem.sample.state.BackgroundResult
import java.util.concurrent.TimeUnit

/**
 * Background sync while the app is not in use: WorkManager runs this about every 15 minutes
 * when the device is online, and it runs one sync bounded by a deadline. The decision of what
 * to do and what to report back lives in the state module (PlatformSync.runInBackground).
 */
class SyncWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result {
        // WorkManager starts work in the app's process, after Application.onCreate.
        val graph = (applicationContext as SampleApplication).graph
        return when (graph.platform.runInBackground(DEADLINE_MS)) {
            BackgroundResult.SUCCESS, BackgroundResult.SKIPPED -> Result.success()
            BackgroundResult.RETRY -> Result.retry()
        }
    }

    companion object {
        private const val NAME = "tandem-sync"

        /**
         * WorkManager stops a worker after 10 minutes; the engine's deadline ends the run well
         * before, so it stops cleanly (what it sent is safe to send again) rather than be killed.
         */
        const val DEADLINE_MS = 8 * 60 * 1000L

        /** Schedules the periodic sync once; later calls keep the existing schedule. */
        fun schedule(context: Context) {
            val request = PeriodicWorkRequestBuilder<SyncWorker>(15, TimeUnit.MINUTES)
                .setConstraints(Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build())
                .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
                .build()
            WorkManager.getInstance(context).enqueueUniquePeriodicWork(NAME, ExistingPeriodicWorkPolicy.KEEP, request)
        }
    }
}
