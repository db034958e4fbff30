// The Tandem sample app: Jetpack Compose screens over the state module.

import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
    alias(libs.plugins.kotlin.compose)
}

// Release builds talk HTTPS only (the engine refuses plain HTTP to remote hosts without
// allowInsecureHttp, which only debug builds pass), so they need a real server's URL:
// ./gradlew assembleRelease -PsampleReleaseServerUrl=https://sync.example.com
val releaseServerUrl: Provider<String> = providers.gradleProperty("sampleReleaseServerUrl")

android {
    namespace = "dev.tandem.sample"
    compileSdk = 36

    defaultConfig {
        applicationId = "dev.tandem.sample"
        // The generated bindings use java.time.Instant, which Android has from API 26.
        minSdk = 26
        targetSdk = 36
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        debug {
            // The emulator's address for the development machine, where `cargo run -p
            // tandem-server` listens on port 8787.
            buildConfigField("String", "DEFAULT_SERVER_URL", "\"http://10.0.2.2:8787\"")
        }
        release {
            buildConfigField("String", "DEFAULT_SERVER_URL", "\"${releaseServerUrl.getOrElse("")}\"")
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }

    buildFeatures {
        compose = true
        buildConfig = true
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets {
        getByName("main") {
            kotlin.srcDirs("src/main/kotlin")
            // The schema the server loads, shipped as an asset (assets/sample.json) so app and
            // server never disagree about it.
            assets.srcDirs("../../schemas")
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

val checkReleaseServerUrl by tasks.registering {
    val url = releaseServerUrl.orNull
    doLast {
        check(url != null && url.startsWith("https://")) {
            "release builds need an HTTPS server: -PsampleReleaseServerUrl=https://your-server"
        }
    }
}

tasks.matching { it.name == "preReleaseBuild" }.configureEach {
    dependsOn(checkReleaseServerUrl)
}

dependencies {
    implementation(project(":state"))

    implementation(libs.kotlinx.coroutines.android)
    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.activity.compose)
    implementation(platform(libs.androidx.compose.bom))
    implementation(libs.androidx.compose.ui)
    implementation(libs.androidx.compose.ui.tooling.preview)
    implementation(libs.androidx.compose.material3)
    implementation(libs.androidx.compose.material.icons.core)
    implementation(libs.androidx.lifecycle.viewmodel.compose)
    implementation(libs.androidx.lifecycle.runtime.compose)
    implementation(libs.androidx.lifecycle.process)
    implementation(libs.androidx.navigation.compose)
    implementation(libs.androidx.work.runtime.ktx)
    debugImplementation(libs.androidx.compose.ui.tooling)
}
