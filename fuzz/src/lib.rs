//! The libFuzzer side of smtool's fuzz harness: [`target!`] makes a fuzz binary of one function
//! of `smtool::fuzzing`, run under the allocation bound of [`bounded_alloc`].

pub mod bounded_alloc;

/// `target!(name)`: the libFuzzer entry point for `smtool::fuzzing::name`.
#[macro_export]
macro_rules! target {
    ($name:ident) => {
        #[global_allocator]
        static ALLOCATOR: $crate::bounded_alloc::Bounded = $crate::bounded_alloc::Bounded;

        libfuzzer_sys::fuzz_target!(|data: &[u8]| {
            $crate::bounded_alloc::bounded(stringify!($name), || smtool::fuzzing::$name(data))
        });
    };
}
