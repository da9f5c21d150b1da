//! Anonymous memory made resident, for the helper workloads.
pub const PAGE: usize = 4096;

/// A fresh private anonymous mapping of `len` bytes, every page written.
pub fn map_and_touch(len: usize) -> *mut u8 {
    let ptr = map_anonymous(len);
    for offset in (0..len).step_by(PAGE) {
        // SAFETY: `ptr..ptr+len` is the fresh writable mapping made above.
        unsafe { ptr.add(offset).write_volatile(1) };
    }
    ptr
}

/// A fresh private anonymous mapping of `len` bytes, untouched, in 4 KiB
/// pages (a transparent huge page would be one fault and one counter update
/// for 512 pages, which the workloads that count faults must not see).
pub fn map_anonymous_small_pages(len: usize) -> *mut u8 {
    let ptr = map_anonymous(len);
    // SAFETY: advising our own fresh mapping.
    unsafe { libc::madvise(ptr.cast(), len, libc::MADV_NOHUGEPAGE) };
    ptr
}

fn map_anonymous(len: usize) -> *mut u8 {
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
    ptr.cast::<u8>()
}
