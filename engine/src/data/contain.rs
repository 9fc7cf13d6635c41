//! Keeps a panic inside a third-party decoder (symphonia's MP4 atom parser panics on some
//! malformed files — found by fuzzing, see docs/reliability.md) from taking Lathe down: the call
//! runs under `catch_unwind`, the panic becomes an ordinary error (the file is skipped with a
//! warning), and the default panic message is not printed for it.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    /// True while this thread runs a guarded decoder call.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

static HOOK: Once = Once::new();

/// Runs `f`; a panic inside it becomes `Err("<what> failed on this file (…)")`.
pub fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    match result {
        Ok(r) => r,
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!(
                "{what} failed on this file ({why}); the file looks corrupt"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_and_values_pass_through() {
        assert_eq!(guarded("decoder", || Ok::<_, String>(3)), Ok(3));
        let e = guarded::<()>("decoder", || panic!("index out of bounds")).unwrap_err();
        assert!(
            e.starts_with("decoder failed on this file (index out of bounds)"),
            "{e}"
        );
        assert!(!GUARDED.with(Cell::get));
    }
}
