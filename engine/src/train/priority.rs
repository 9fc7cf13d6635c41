//! Background priority for training in an interactive app: the desktop window's threads (its
//! UI, and a software renderer's, where there is no GPU) must win the CPU over training's, or
//! frames stall while every core extracts features. Linux: nice 10 per thread; macOS: the
//! "utility" quality-of-service class. Elsewhere (Windows) threads keep their priority.

/// The nice value training threads get on Linux (0 is normal, 19 the lowest).
#[cfg(target_os = "linux")]
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to background work. Threads it starts
/// afterwards inherit the lower priority. Returns whether the OS took it.
pub fn lower_this_thread() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread's own id; on Linux `setpriority`
        // with a thread id sets that thread's nice value alone. A thread already nicer than
        // BACKGROUND_NICE is left alone (never raise a priority).
        #[allow(unsafe_code)]
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::getpriority(libc::PRIO_PROCESS, tid) >= BACKGROUND_NICE
                || libc::setpriority(libc::PRIO_PROCESS, tid, BACKGROUND_NICE) == 0
        }
    }
    #[cfg(target_vendor = "apple")]
    {
        // SAFETY: sets the calling thread's own QoS class; no pointers involved.
        #[allow(unsafe_code)]
        unsafe {
            libc::pthread_set_qos_class_self_np(libc::qos_class_t::QOS_CLASS_UTILITY, 0) == 0
        }
    }
    #[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
    {
        false
    }
}

/// Builds rayon's global pool (which decoding, feature extraction and the CPU kernels use) with
/// background-priority workers. Call it once at start-up, before anything uses rayon; returns
/// `false` if the pool already existed (it then keeps its priority).
pub fn background_workers() -> bool {
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("lathe-worker-{i}"))
        .start_handler(|_| {
            lower_this_thread();
        })
        .build_global()
        .is_ok()
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn lowers_only_the_calling_thread() {
        // SAFETY: `getpriority` on a thread id reads that thread's nice value.
        #[allow(unsafe_code)]
        let nice = || unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::getpriority(libc::PRIO_PROCESS, tid)
        };
        let before = nice();
        let (lowered, after, child) = std::thread::spawn(move || {
            let lowered = super::lower_this_thread();
            let after = nice();
            let child = std::thread::spawn(nice).join().unwrap();
            (lowered, after, child)
        })
        .join()
        .unwrap();
        assert!(lowered);
        assert_eq!(after, super::BACKGROUND_NICE.max(before));
        assert_eq!(child, after, "threads started later inherit the priority");
        assert_eq!(nice(), before, "the calling test thread is untouched");
    }
}
