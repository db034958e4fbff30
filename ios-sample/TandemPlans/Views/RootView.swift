// The top of the view tree: one screen per session state.

import SwiftUI
import Tandem

/// Shows the screen for the session: opening, a failure to open, sign-in, or the app.
struct RootView: View {
    @Environment(AppModel.self) private var app

    var body: some View {
        Group {
            switch app.session {
            case .starting:
                ProgressView("Opening…")
            case let .unavailable(message):
                ContentUnavailableView {
                    Label("Cannot Open the Data", systemImage: "exclamationmark.triangle")
                } description: {
                    Text(message)
                } actions: {
                    Button("Try Again") {
                        app.start()
                    }
                }
            case .signedOut:
                SignInView(serverURL: app.serverURL)
            case .signedIn, .sessionExpired:
                if let tandem = app.tandem {
                    // A new engine (another server) gets new screens, whose stores observe it.
                    MainTabView(tandem: tandem)
                        .id(ObjectIdentifier(tandem))
                } else {
                    ProgressView()
                }
            }
        }
        .task {
            // Normally done at launch by the app delegate; harmless when already open.
            app.start()
        }
    }
}

/// The signed-in app: plans, exercises, the conflict center and settings, each tab with the
/// sync indicator under its screens.
struct MainTabView: View {
    @Environment(AppModel.self) private var app
    let tandem: Tandem

    var body: some View {
        @Bindable var app = app
        TabView {
            NavigationStack {
                PlansListView(tandem: tandem)
            }
            .syncIndicator()
            .tabItem { Label("Plans", systemImage: "list.bullet.clipboard") }

            NavigationStack {
                ExerciseCatalogView(tandem: tandem)
            }
            .syncIndicator()
            .tabItem { Label("Exercises", systemImage: "dumbbell") }

            NavigationStack {
                ConflictCenterView(tandem: tandem)
            }
            .syncIndicator()
            .tabItem { Label("Sync", systemImage: "arrow.triangle.2.circlepath") }
            .badge(app.syncIndicator.attentionCount)

            NavigationStack {
                SettingsView(app: app)
            }
            .syncIndicator()
            .tabItem { Label("Settings", systemImage: "gear") }
        }
        .sheet(isPresented: $app.isReauthenticating) {
            SignInView(
                serverURL: app.serverURL,
                email: app.session.user?.email ?? "",
                isReauthentication: true
            )
        }
    }
}

extension View {
    /// Shows an alert while `message` is set; dismissing it clears the message.
    func errorAlert(_ message: Binding<String?>) -> some View {
        alert(
            "Something Went Wrong",
            isPresented: Binding(
                get: { message.wrappedValue != nil },
                set: { presented in
                    if !presented {
                        message.wrappedValue = nil
                    }
                }
            ),
            actions: {
                Button("OK", role: .cancel) {}
            },
            message: {
                Text(message.wrappedValue ?? "")
            }
        )
    }
}
