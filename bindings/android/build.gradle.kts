// Packages Tandem as an Android library (AAR): the Kotlin that UniFFI generates with
// `android = true` (bindings/android/uniffi-android.toml), the hand-written coroutine layer shared
// with the JVM build (bindings/kotlin/src/main/kotlin) and libtandem.so for each ABI.
//
// Do not run Gradle directly on a fresh clone: scripts/build-aar.sh writes the generated inputs
// below build/generated/ first, then runs `gradle assembleRelease` here.

import org.jetbrains.kotlin.gradle.dsl.JvmTarget

// AGP 8.13.2 is the first 8.13 whose R8 reads Kotlin 2.3 metadata; it needs Gradle 8.13+.
plugins {
    id("com.android.library") version "8.13.2"
    id("org.jetbrains.kotlin.android") version "2.3.21"
}

// Inputs written by scripts/build-aar.sh (never committed; `gradle clean` removes them).
val generatedKotlin = file("build/generated/uniffi/kotlin")
val generatedJniLibs = file("build/generated/jniLibs")
// The ABIs the AAR must carry; the build fails if one is missing rather than ship without it.
val abis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")

android {
    namespace = "dev.tandem"
    compileSdk = 36

    defaultConfig {
        // The generated Kotlin maps timestamps to java.time (API 26, Android 8.0); JNA 5 and the
        // generated code's Cleaner fallback would work from 24.
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
    }

    buildTypes {
        release {
            // The app shrinks; consumer-rules.pro tells its R8 what JNA reaches by reflection.
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets {
        getByName("main") {
            kotlin.srcDirs("src/main/kotlin", "../kotlin/src/main/kotlin", generatedKotlin)
            jniLibs.srcDirs(generatedJniLibs)
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

// rustls-platform-verifier (the TLS verifier of the native library) has a Kotlin component that
// must match the crate's version exactly: read it from the workspace's Cargo.lock.
abstract class RustlsVerifierVersion : ValueSource<String, RustlsVerifierVersion.Params> {
    interface Params : ValueSourceParameters {
        val lockFile: RegularFileProperty
    }

    override fun obtain(): String {
        val lines = parameters.lockFile.get().asFile.readLines()
        val at = lines.indexOfFirst { it.trim() == "name = \"rustls-platform-verifier-android\"" }
        check(at >= 0) { "rustls-platform-verifier-android is not in Cargo.lock" }
        return lines.drop(at + 1).first { it.trimStart().startsWith("version = ") }
            .substringAfter('"').substringBefore('"')
    }
}

val rustlsVerifierVersion = providers.of(RustlsVerifierVersion::class.java) {
    parameters.lockFile.set(layout.projectDirectory.file("../../Cargo.lock"))
}

configurations.configureEach {
    resolutionStrategy.eachDependency {
        if (requested.group == "rustls" && requested.name == "rustls-platform-verifier") {
            useVersion(rustlsVerifierVersion.get())
            because("the Kotlin component must match the rustls-platform-verifier-android crate")
        }
    }
}

dependencies {
    // Unversioned on purpose: the rule above pins it to the crate's version.
    implementation("rustls:rustls-platform-verifier")
    // JNA's AAR carries libjnidispatch.so for every Android ABI; the plain jar would carry desktop
    // libraries only. `@aar` makes the dependency non-transitive, so apps add it themselves too.
    api("net.java.dev.jna:jna:5.18.1@aar")
    api("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.10.2")
    // @RequiresApi in the generated Cleaner code.
    implementation("androidx.annotation:annotation:1.9.1")
}

// Fails early, with the way out, when the generated inputs are missing.
val checkGeneratedInputs by tasks.registering {
    val bindings = File(generatedKotlin, "dev/tandem/tandem.kt")
    val libraries = abis.map { File(generatedJniLibs, "$it/libtandem.so") }
    doLast {
        val missing = (listOf(bindings) + libraries).filterNot { it.isFile }
        check(missing.isEmpty()) {
            "missing ${missing.joinToString()}: build the AAR with scripts/build-aar.sh"
        }
    }
}

tasks.named("preBuild") {
    dependsOn(checkGeneratedInputs)
}
