//! A global allocator for the fuzz harness: the system allocator, refusing a thread that runs
//! a fuzz input more than `LIMIT` live bytes (the process then aborts, naming the target), so
//! an input that makes smtool allocate far beyond its size is a crash. Shared by
//! `tests/fuzz.rs` and the libFuzzer targets (`fuzz/fuzz_targets/`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Most bytes one input may have allocated at once, on the thread that runs it.
pub const LIMIT: usize = 256 << 20;

thread_local! {
    /// The target whose input this thread runs, while one runs.
    static ARMED: Cell<Option<&'static str>> = const { Cell::new(None) };
    static LIVE: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` (one input of `target`) under the bound.
pub fn bounded<R>(target: &'static str, f: impl FnOnce() -> R) -> R {
    LIVE.with(|l| l.set(0));
    ARMED.with(|a| a.set(Some(target)));
    struct Disarm;
    impl Drop for Disarm {
        fn drop(&mut self) {
            ARMED.with(|a| a.set(None));
        }
    }
    let _disarm = Disarm;
    f()
}

pub struct Bounded;

impl Bounded {
    /// Counts `grow` more bytes; false (after saying why on stderr) past the limit.
    fn admit(grow: usize) -> bool {
        let live = LIVE.try_with(Cell::get).unwrap_or(0).saturating_add(grow);
        let _ = LIVE.try_with(|l| l.set(live));
        match ARMED.try_with(Cell::get).ok().flatten() {
            Some(target) if live > LIMIT => {
                let _ = ARMED.try_with(|a| a.set(None));
                over_limit(target, grow);
                false
            }
            _ => true,
        }
    }

    fn release(shrink: usize) {
        let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(shrink)));
    }
}

/// Reports an allocation over the limit without allocating (the process aborts next).
fn over_limit(target: &str, size: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = size;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for part in [
        &b"\nfuzz target "[..],
        target.as_bytes(),
        b": an allocation of ",
        &digits[at..],
        b" bytes takes the input past the allocation limit\n",
    ] {
        // SAFETY: writes a valid buffer to stderr.
        unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
}

// SAFETY: every call forwards to `System` with the same layout; the counting touches only
// const-initialised thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !Self::admit(layout.size()) {
            return std::ptr::null_mut();
        }
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !Self::admit(layout.size()) {
            return std::ptr::null_mut();
        }
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Self::release(layout.size());
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() && !Self::admit(new_size - layout.size()) {
            return std::ptr::null_mut();
        }
        let out = System.realloc(ptr, layout, new_size);
        if new_size < layout.size() {
            Self::release(layout.size() - new_size);
        } else if out.is_null() {
            Self::release(new_size - layout.size());
        }
        out
    }
}
