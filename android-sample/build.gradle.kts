// Plugin versions for every module, in one place (the modules apply them without versions; the
// Tandem library in ../bindings/android names the same versions itself, which Gradle accepts
// because they match).

plugins {
    alias(libs.plugins.android.application) apply false
    alias(libs.plugins.android.library) apply false
    alias(libs.plugins.kotlin.android) apply false
    alias(libs.plugins.kotlin.compose) apply false
}

// The Tandem library depends on the TLS verifier's Kotlin component without a version: it must
// equal the rustls-platform-verifier-android crate's version in the workspace's Cargo.lock.
// The library pins it for its own build; every module that resolves the library's dependencies
// (the app's runtime classpath above all) needs the same pin.
val rustlsVerifierVersion: Provider<String> =
    providers.fileContents(layout.projectDirectory.file("../Cargo.lock")).asText.map { lock ->
        val lines = lock.lines()
        val at = lines.indexOfFirst { it.trim() == "name = \"rustls-platform-verifier-android\"" }
        check(at >= 0) { "rustls-platform-verifier-android is not in ../Cargo.lock" }
        lines.drop(at + 1).first { it.trimStart().startsWith("version = ") }
            .substringAfter('"').substringBefore('"')
    }

subprojects {
    configurations.configureEach {
        resolutionStrategy.eachDependency {
            if (requested.group == "rustls" && requested.name == "rustls-platform-verifier") {
                useVersion(rustlsVerifierVersion.get())
                because("the Kotlin component must match the rustls-platform-verifier-android crate")
            }
        }
    }
}
