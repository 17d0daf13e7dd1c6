//! Holding SIGTERM and SIGINT from before `main` (an `.init_array` constructor in main.rs)
//! until their handlers are installed. As PID 1 (a container's entry point) a signal without
//! a handler is discarded by the kernel, so one sent in the first milliseconds was lost and the
//! run went on to migrate; a blocked signal is kept pending instead, and delivered to the
//! handler once it exists.

/// The signals db-init handles (`app::run`).
fn set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset only write the local set they are given.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

fn mask(how: libc::c_int) {
    let set = set();
    // SAFETY: pthread_sigmask reads the set and changes this thread's mask; no old mask is asked
    // for. It fails only on an invalid `how`, which these two callers never pass.
    unsafe {
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

/// As the C runtime starts the program, before any thread exists (threads inherit the mask).
pub fn block() {
    mask(libc::SIG_BLOCK);
}

/// Once the handlers are installed: a signal that came meanwhile is delivered now.
pub fn unblock() {
    mask(libc::SIG_UNBLOCK);
}
