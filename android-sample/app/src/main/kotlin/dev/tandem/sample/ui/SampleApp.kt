package dev.tandem.sample.ui

import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.PaddingValues
import androidx.compose.foundation.layout.WindowInsets
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.padding
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.automirrored.filled.ArrowBack
import androidx.compose.material.icons.automirrored.filled.List
import androidx.compose.material.icons.filled.Settings
import androidx.compose.material.icons.filled.Star
import androidx.compose.material.icons.filled.Warning
import androidx.compose.material3.Badge
import androidx.compose.material3.BadgedBox
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.Icon
import androidx.compose.material3.IconButton
import androidx.compose.material3.NavigationBar
import androidx.compose.material3.NavigationBarItem
import androidx.compose.material3.Scaffold
import androidx.compose.material3.SnackbarHost
import androidx.compose.material3.SnackbarHostState
import androidx.compose.material3.Text
import androidx.compose.material3.TopAppBar
import androidx.compose.runtime.Composable
import androidx.compose.runtime.CompositionLocalProvider
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.remember
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.vector.ImageVector
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import androidx.navigation.NavHostController
import androidx.navigation.NavType
import androidx.navigation.compose.NavHost
import androidx.navigation.compose.composable
import androidx.navigation.compose.currentBackStackEntryAsState
import androidx.navigation.compose.rememberNavController
import androidx.navigation.navArgument
import dev.tandem.sample.SessionViewModel
import dev.tandem.sample.SyncIndicatorViewModel
import dev.tandem.sample.state.PlanRef
import dev.tandem.sample.state.Session

/** Navigation routes. Plan and day ids travel in the route, so a ViewModel reads them back. */
object Routes {
    const val PLANS = "plans"
    /** `space` is set for a shared plan (the space it lives in), absent for a personal one. */
    const val PLAN = "plan/{planId}?space={space}"
    const val DAY = "plan/{planId}/day/{dayId}?space={space}"
    const val EXERCISES = "exercises"
    const val CONFLICTS = "conflicts"
    const val SETTINGS = "settings"

    fun plan(plan: PlanRef) = "plan/${plan.id}" + spaceQuery(plan)

    fun day(plan: PlanRef, dayId: String) = "plan/${plan.id}/day/$dayId" + spaceQuery(plan)

    private fun spaceQuery(plan: PlanRef) = plan.spaceId?.let { "?space=$it" } ?: ""
}

/**
 * The app: sign-in while nobody is signed in, the screens otherwise. The session comes from the
 * engine's auth state, so signing out (or a session expiring) returns to sign-in by itself.
 */
@Composable
fun SampleApp(session: SessionViewModel, indicator: SyncIndicatorViewModel) {
    SampleTheme {
        CompositionLocalProvider(LocalSyncIndicator provides indicator) {
            when (val current = session.holder.session.collectAsStateWithLifecycle().value) {
                Session.Starting -> Box(Modifier.fillMaxSize(), contentAlignment = Alignment.Center) {
                    CircularProgressIndicator()
                }
                is Session.SignedOut -> SignInScreen(session, current.expiredEmail)
                is Session.SignedIn -> MainNavigation()
            }
        }
    }
}

private data class Tab(val route: String, val label: String, val icon: ImageVector)

private val tabs = listOf(
    Tab(Routes.PLANS, "Plans", Icons.AutoMirrored.Filled.List),
    Tab(Routes.EXERCISES, "Exercises", Icons.Default.Star),
    Tab(Routes.CONFLICTS, "Conflicts", Icons.Default.Warning),
    Tab(Routes.SETTINGS, "Settings", Icons.Default.Settings),
)

@Composable
private fun MainNavigation() {
    val nav = rememberNavController()
    val entry by nav.currentBackStackEntryAsState()
    val route = entry?.destination?.route
    val indicator by LocalSyncIndicator.current.holder.state.collectAsStateWithLifecycle()
    Scaffold(
        bottomBar = {
            NavigationBar {
                tabs.forEach { tab ->
                    NavigationBarItem(
                        selected = route == tab.route,
                        onClick = { nav.openTab(tab.route) },
                        label = { Text(tab.label) },
                        icon = {
                            val count = indicator.conflicts + indicator.rejected
                            if (tab.route == Routes.CONFLICTS && count > 0) {
                                BadgedBox(badge = { Badge { Text("$count") } }) { Icon(tab.icon, tab.label) }
                            } else {
                                Icon(tab.icon, tab.label)
                            }
                        },
                    )
                }
            }
        },
    ) { padding ->
        NavHost(nav, startDestination = Routes.PLANS, modifier = Modifier.padding(bottom = padding.calculateBottomPadding())) {
            composable(Routes.PLANS) { PlansScreen(onOpen = { nav.navigate(Routes.plan(it)) }) }
            composable(Routes.PLAN, arguments = listOf(navArgument("planId") { type = NavType.StringType }, spaceArgument)) {
                PlanDetailScreen(
                    onBack = { nav.popBackStack() },
                    onOpenDay = { plan, dayId -> nav.navigate(Routes.day(plan, dayId)) },
                    // Sharing moves a personal plan into a space: show it where it is now.
                    onMoved = { plan ->
                        nav.popBackStack()
                        nav.navigate(Routes.plan(plan))
                    },
                )
            }
            composable(
                Routes.DAY,
                arguments = listOf(
                    navArgument("planId") { type = NavType.StringType },
                    navArgument("dayId") { type = NavType.StringType },
                    spaceArgument,
                ),
            ) {
                DayEditorScreen(onBack = { nav.popBackStack() })
            }
            composable(Routes.EXERCISES) { CatalogScreen() }
            composable(Routes.CONFLICTS) { ConflictsScreen() }
            composable(Routes.SETTINGS) { SettingsScreen() }
        }
    }
}

/** The optional `space` of the plan routes (null for a personal plan). */
private val spaceArgument = navArgument("space") {
    type = NavType.StringType
    nullable = true
    defaultValue = null
}

/** Top-level tabs keep one copy each on the back stack and remember their state. */
private fun NavHostController.openTab(route: String) {
    navigate(route) {
        popUpTo(graph.startDestinationId) { saveState = true }
        launchSingleTop = true
        restoreState = true
    }
}

/**
 * Every screen's frame: a top bar with the title, a back arrow where there is somewhere to go
 * back to, the screen's actions and the sync indicator; a snackbar for [message] (the last
 * failed action, dismissed once shown).
 */
@OptIn(ExperimentalMaterial3Api::class)
@Composable
fun SampleScaffold(
    title: String,
    message: String?,
    onMessageShown: () -> Unit,
    onBack: (() -> Unit)? = null,
    actions: @Composable () -> Unit = {},
    floatingActionButton: @Composable () -> Unit = {},
    content: @Composable (PaddingValues) -> Unit,
) {
    val snackbar = remember { SnackbarHostState() }
    LaunchedEffect(message) {
        if (message != null) {
            snackbar.showSnackbar(message)
            onMessageShown()
        }
    }
    Scaffold(
        topBar = {
            TopAppBar(
                title = { Text(title, maxLines = 1) },
                navigationIcon = {
                    if (onBack != null) {
                        IconButton(onClick = onBack) { Icon(Icons.AutoMirrored.Filled.ArrowBack, "Back") }
                    }
                },
                actions = {
                    actions()
                    SyncIndicatorChip()
                },
            )
        },
        snackbarHost = { SnackbarHost(snackbar) },
        floatingActionButton = floatingActionButton,
        // The top bar takes the status bar's inset itself and the app's navigation bar the
        // bottom one; insetting the content again would leave gaps.
        contentWindowInsets = WindowInsets(0, 0, 0, 0),
        content = content,
    )
}
