//! Anonymous memory made resident, for the helper workloads.
pub const PAGE: usize = 4096;

/// A fresh private anonymous mapping of `len` bytes, every page written.
pub fn map_and_touch(len: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping has no preconditions.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED, "mmap of {len} bytes failed");
    let ptr = ptr.cast::<u8>();
    for offset in (0..len).step_by(PAGE) {
        // SAFETY: `ptr..ptr+len` is the fresh writable mapping made above.
        unsafe { ptr.add(offset).write_volatile(1) };
    }
    ptr
}
