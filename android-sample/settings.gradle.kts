// The Tandem sample app (training plans), a Gradle build of its own: the app, its state module,
// and Tandem's Android library built from this checkout (bindings/android) as a subproject.
//
// Before the first build, produce the library's native and generated inputs once from the
// repository root (see README.md): scripts/build-aar.sh.

pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
        // The Tandem library's TLS verifier has a Kotlin component published only here (see
        // bindings/android/settings.gradle.kts); the app resolves it for its runtime classpath.
        maven {
            url = uri("https://github.com/rustls/rustls-platform-verifier/raw/maven-archive/android-release-support/maven/")
        }
    }
}

rootProject.name = "tandem-sample"

include(":app")
include(":state")
// Tandem's Android library, as a project rather than a copied .aar: the app always runs the
// engine of this checkout. Its own settings file is not read here; this one supplies the
// repositories.
include(":tandem")
project(":tandem").projectDir = file("../bindings/android")
