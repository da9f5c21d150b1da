//! Anonymous memory made resident, for the helper workloads.
pub const PAGE: usize = 4096;

/// A fresh private anonymous mapping of `len` bytes, every page written.
pub fn map_and_touch(len: usize) -> *mut u8 {
    let ptr = map_anonymous(len);
    // SAFETY: the fresh writable mapping of `len` bytes made above.
    unsafe { touch(ptr, len) };
    ptr
}

/// Writes one byte of every page of `ptr..ptr+len`.
///
/// # Safety
/// `ptr..ptr+len` must be a writable range of this process's own (mapped or
/// grown by the caller) that nothing else is using.
pub unsafe fn touch(ptr: *mut u8, len: usize) {
    for offset in (0..len).step_by(PAGE) {
        // SAFETY: within the caller's writable range, as required above.
        unsafe { ptr.add(offset).write_volatile(1) };
    }
}

/// A fresh private anonymous mapping of `len` bytes, untouched, in 4 KiB
/// pages (see `no_huge_pages`).
pub fn map_anonymous_small_pages(len: usize) -> *mut u8 {
    let ptr = map_anonymous(len);
    no_huge_pages(ptr, len);
    ptr
}

/// One fault per 4 KiB page, whatever the kernel's transparent huge page
/// policy: the tests count faults and counter updates, and Debian's kernel
/// defaults to THP "always" (one fault per 2 MiB), where most hosts use
/// "madvise".
/// A kernel built without transparent huge pages refuses the advice
/// (EINVAL), having no huge pages to avoid.
pub fn no_huge_pages(ptr: *mut u8, len: usize) {
    // SAFETY: advice on a range of our own mappings; it changes no contents.
    let ret = unsafe { libc::madvise(ptr.cast(), len, libc::MADV_NOHUGEPAGE) };
    let error = std::io::Error::last_os_error();
    assert!(ret == 0 || error.raw_os_error() == Some(libc::EINVAL), "madvise(MADV_NOHUGEPAGE) failed: {error}");
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
