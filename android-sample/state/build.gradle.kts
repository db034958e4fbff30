// The state module in the Android build: the same sources as state/pom.xml builds on the JVM,
// compiled here against Tandem's Android library (the Kotlin generated with `android = true`).
// It has no Android code of its own; it is an Android library only because the library it
// depends on is one. Its tests (src/jvmTest) run with Maven, against a real server.

import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.android.library)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "dev.tandem.sample.state"
    compileSdk = 36

    defaultConfig {
        // The generated bindings use java.time.Instant, which Android has from API 26.
        minSdk = 26
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets {
        getByName("main") {
            kotlin.srcDirs("src/main/kotlin")
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    // The engine's types are part of this module's API (state holders hand out Tandem records
    // and enums), so the app sees them too.
    api(project(":tandem"))
    api(libs.kotlinx.coroutines.core)
    implementation(libs.kotlinx.serialization.json)
}
