package dev.tandem.sample

import androidx.lifecycle.SavedStateHandle
import androidx.lifecycle.ViewModel
import androidx.lifecycle.ViewModelProvider
import androidx.lifecycle.ViewModelProvider.AndroidViewModelFactory.Companion.APPLICATION_KEY
import androidx.lifecycle.createSavedStateHandle
import androidx.lifecycle.viewModelScope
import androidx.lifecycle.viewmodel.CreationExtras
import androidx.lifecycle.viewmodel.initializer
import androidx.lifecycle.viewmodel.viewModelFactory
import dev.tandem.sample.state.CatalogStateHolder
import dev.tandem.sample.state.ConflictCenterStateHolder
import dev.tandem.sample.state.DayEditorStateHolder
import dev.tandem.sample.state.DayPhotoStateHolder
import dev.tandem.sample.state.PlanDetailStateHolder
import dev.tandem.sample.state.PlanRef
import dev.tandem.sample.state.ShareSheetStateHolder
import dev.tandem.sample.state.PlansListStateHolder
import dev.tandem.sample.state.SampleGraph
import dev.tandem.sample.state.SessionStateHolder
import dev.tandem.sample.state.SettingsStateHolder
import dev.tandem.sample.state.SyncIndicatorStateHolder
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.launch

/**
 * A ViewModel is a thin shell around one of the state module's holders: it gives the holder its
 * scope (cancelled when the screen is gone for good) and turns the holder's suspend actions
 * into fire-and-forget calls for the UI, with an optional callback on the main thread (to
 * navigate once a plan is created, say).
 */
open class HolderViewModel<H : Any>(create: (CoroutineScope) -> H) : ViewModel() {
    val holder: H = create(viewModelScope)

    fun act(action: suspend H.() -> Unit) {
        viewModelScope.launch { holder.action() }
    }

    fun <T> act(action: suspend H.() -> T, then: (T) -> Unit) {
        viewModelScope.launch { then(holder.action()) }
    }
}

class SessionViewModel(graph: SampleGraph) :
    HolderViewModel<SessionStateHolder>({ SessionStateHolder(graph.host, graph.settings, it) })

class SyncIndicatorViewModel(graph: SampleGraph) :
    HolderViewModel<SyncIndicatorStateHolder>({ SyncIndicatorStateHolder(graph.host, graph.settings, it) })

class PlansViewModel(graph: SampleGraph) :
    HolderViewModel<PlansListStateHolder>({ PlansListStateHolder(graph.plans, it, graph.spaces) })

/** The plan from the navigation route: `plan/{planId}`, with `?space={spaceId}` for a shared one. */
private fun SavedStateHandle.planRef(): PlanRef {
    val id = checkNotNull(get<String>("planId"))
    return get<String>("space")?.let { PlanRef.shared(id, it) } ?: PlanRef.personal(id)
}

class PlanDetailViewModel(graph: SampleGraph, handle: SavedStateHandle) :
    HolderViewModel<PlanDetailStateHolder>({
        PlanDetailStateHolder(handle.planRef(), graph.plans, graph.exercises, it, graph.spaces)
    })

/** The share sheet of the plan in the route (the detail screen's). */
class ShareSheetViewModel(graph: SampleGraph, handle: SavedStateHandle) :
    HolderViewModel<ShareSheetStateHolder>({ ShareSheetStateHolder(handle.planRef(), graph.spaces, it) })

/** Both ids come from the navigation route (`plan/{planId}/day/{dayId}`, `?space=` when shared). */
class DayEditorViewModel(graph: SampleGraph, handle: SavedStateHandle) :
    HolderViewModel<DayEditorStateHolder>({
        DayEditorStateHolder(handle.planRef(), checkNotNull(handle.get<String>("dayId")), graph.plans, graph.exercises, it, graph.spaces)
    })

/** The photo of the day in the route (the day editor's). */
class DayPhotoViewModel(graph: SampleGraph, handle: SavedStateHandle) :
    HolderViewModel<DayPhotoStateHolder>({
        DayPhotoStateHolder(handle.planRef(), checkNotNull(handle.get<String>("dayId")), graph.host, it)
    })

class CatalogViewModel(graph: SampleGraph) :
    HolderViewModel<CatalogStateHolder>({ CatalogStateHolder(graph.exercises, it) })

class ConflictsViewModel(graph: SampleGraph) :
    HolderViewModel<ConflictCenterStateHolder>({ ConflictCenterStateHolder(graph.host, it) })

class SettingsViewModel(graph: SampleGraph) :
    HolderViewModel<SettingsStateHolder>({ SettingsStateHolder(graph.host, graph.settings, it) })

/** Builds every ViewModel of the app from the application's graph. */
val SampleViewModels: ViewModelProvider.Factory = viewModelFactory {
    initializer { SessionViewModel(graph()) }
    initializer { SyncIndicatorViewModel(graph()) }
    initializer { PlansViewModel(graph()) }
    initializer { PlanDetailViewModel(graph(), createSavedStateHandle()) }
    initializer { ShareSheetViewModel(graph(), createSavedStateHandle()) }
    initializer { DayEditorViewModel(graph(), createSavedStateHandle()) }
    initializer { DayPhotoViewModel(graph(), createSavedStateHandle()) }
    initializer { CatalogViewModel(graph()) }
    initializer { ConflictsViewModel(graph()) }
    initializer { SettingsViewModel(graph()) }
}

private fun CreationExtras.graph(): SampleGraph = (checkNotNull(this[APPLICATION_KEY]) as SampleApplication).graph
