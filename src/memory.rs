//! Giving memory back to the operating system once a large structure is gone.
//!
//! The `recsys` binary allocates through mimalloc (see `main.rs`). mimalloc
//! keeps the pages of freed blocks and returns them to the system lazily: a
//! page freed by a thread other than the one that allocated it (a model
//! loaded on one thread and dropped on another after a reload) waits in its
//! arena for a purge that only later allocations trigger. An idle service
//! would keep the old and the new model resident side by side, and one under
//! traffic leaks a little of each old model into fragmentation. After dropping
//! something as large as a model, [`release_freed`] asks mimalloc to purge
//! what is free now. Without mimalloc as the global allocator (the library's
//! own tests) the call only tidies mimalloc's empty heap.

/// Return the pages of every block freed so far to the operating system.
pub fn release_freed() {
    // SAFETY: `mi_collect` only walks mimalloc's own structures; `force`
    // also purges the arenas' free ranges at once instead of after a delay.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
