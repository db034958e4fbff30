// The Tandem Android library, a Gradle build of its own (the rest of the repository builds with
// Cargo and Maven). Build it with scripts/build-aar.sh, which first produces the native libraries
// and the generated Kotlin this build packages.

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
    }
}

rootProject.name = "tandem"
