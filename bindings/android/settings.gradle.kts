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
        // rustls-platform-verifier's Kotlin component is published only here.
        maven {
            url = uri("https://github.com/rustls/rustls-platform-verifier/raw/maven-archive/android-release-support/maven/")
        }
    }
}

rootProject.name = "tandem"
