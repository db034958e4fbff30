//! Android start-up: the two JVM handles the engine's native code needs, given once by the app.
//!
//! `rustls-platform-verifier` checks TLS certificates with Android's own verifier, so it needs
//! the JVM and the application `Context`. Kotlin (`bindings/android`, `TandemAndroid.initialize`)
//! calls this entry point once, before the first `Tandem.open` that talks to a server. (The
//! keyring's `Context`, for the default secure store, is set by the same Kotlin call through the
//! `Keyring.initializeNdkContext` entry point that `android-native-keyring-store` exports.)

use jni::errors::ThrowRuntimeExAndDefault;
use jni::objects::{JClass, JObject};
use jni::EnvUnowned;

/// `dev.tandem.TandemAndroid.initializeVerifier(context)`: returns whether it worked. A JNI
/// failure is thrown back to Kotlin as a `RuntimeException`; a panic never unwinds into the JVM.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_tandem_TandemAndroid_initializeVerifier<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    context: JObject<'caller>,
) -> jni::sys::jboolean {
    env.with_env(|env| -> jni::errors::Result<jni::sys::jboolean> {
        init_verifier(env, context)?;
        Ok(true)
    })
    .resolve::<ThrowRuntimeExAndDefault>()
}

#[cfg(target_os = "android")]
fn init_verifier(env: &mut jni::Env<'_>, context: JObject<'_>) -> jni::errors::Result<()> {
    rustls_platform_verifier::android::init_with_env(env, context)
}

/// Off Android there is nothing to initialise; this lets the entry point compile (and be
/// checked) in host builds.
#[cfg(not(target_os = "android"))]
fn init_verifier(_env: &mut jni::Env<'_>, _context: JObject<'_>) -> jni::errors::Result<()> {
    Ok(())
}
