//! A newc ("SVR4 with no CRC") cpio archive, the format the kernel unpacks
//! as an initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Hand-rolled rather than staged on disk for `cpio`: the archive needs a
//! /dev/console device node (the kernel opens it for init's stdio before any
//! devtmpfs is mounted), and making one on disk takes root and mknod, while
//! writing its header takes ten lines. Parent directories must come before
//! their entries: the kernel's unpacker does not create them.
use std::{
    collections::BTreeSet,
    io::{self, Write},
    path::Path,
};

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;

pub struct Archive<W: Write> {
    out: W,
    /// Directories already written, so each is written once.
    dirs: BTreeSet<String>,
    next_inode: u32,
}

impl<W: Write> Archive<W> {
    pub fn new(out: W) -> Self {
        Self { out, dirs: BTreeSet::new(), next_inode: 1 }
    }

    /// Adds `path` (absolute inside the archive) and any missing parents.
    pub fn dir(&mut self, path: &str) -> io::Result<()> {
        let path = path.trim_matches('/');
        let mut prefix = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if self.dirs.insert(prefix.clone()) {
                let name = prefix.clone();
                self.entry(&name, S_IFDIR | 0o755, 0, &[])?;
            }
        }
        Ok(())
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        let path = path.trim_start_matches('/');
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent)?;
        }
        self.entry(path, S_IFREG | (mode & 0o7777), 0, data)
    }

    /// Copies a host file to `path` in the archive, keeping its permissions.
    pub fn copy(&mut self, path: &str, host: &Path) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let data = std::fs::read(host)?;
        let mode = std::fs::metadata(host)?.permissions().mode();
        self.file(path, mode, &data)
    }

    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> io::Result<()> {
        let path = path.trim_start_matches('/');
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent)?;
        }
        self.entry(path, S_IFCHR | (mode & 0o7777), (major << 8) | minor, &[])
    }

    /// Writes the trailer and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, 0, &[])?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// `rdev` packs major << 8 | minor; newc stores them apart.
    fn entry(&mut self, name: &str, mode: u32, rdev: u32, data: &[u8]) -> io::Result<()> {
        let inode = self.next_inode;
        self.next_inode += 1;
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        let size = u32::try_from(data.len()).map_err(|_| io::Error::other(format!("{name} is over 4 GiB")))?;
        let name_size = name.len() as u32 + 1; // with its NUL
        let fields = [inode, mode, 0, 0, nlink, 0, size, 0, 0, rdev >> 8, rdev & 0xff, name_size, 0];
        let mut header = String::from("070701");
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        // Header (110 bytes) + name is padded to 4, and so is the data.
        self.pad(110 + name_size as usize)?;
        self.out.write_all(data)?;
        self.pad(data.len())
    }

    fn pad(&mut self, len: usize) -> io::Result<()> {
        self.out.write_all(&[0; 3][..(4 - len % 4) % 4])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(entry: &[u8], index: usize) -> u32 {
        let start = 6 + index * 8;
        u32::from_str_radix(std::str::from_utf8(&entry[start..start + 8]).unwrap(), 16).unwrap()
    }

    #[test]
    fn entries_are_aligned_parents_come_first_and_the_trailer_ends_it() {
        let mut archive = Archive::new(Vec::new());
        archive.file("/usr/bin/tool", 0o755, b"hello").unwrap();
        archive.char_device("/dev/console", 0o600, 5, 1).unwrap();
        let bytes = archive.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);

        // Walk the archive as the kernel does.
        let mut names = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let entry = &bytes[at..];
            assert_eq!(&entry[..6], b"070701", "entry at {at}");
            let (mode, size, name_size) = (field(entry, 1), field(entry, 6), field(entry, 11));
            let name = std::str::from_utf8(&entry[110..110 + name_size as usize - 1]).unwrap().to_owned();
            let data_at = (110 + name_size as usize).next_multiple_of(4);
            if name == "tool" || name.ends_with("/tool") {
                assert_eq!(&entry[data_at..data_at + 5], b"hello");
                assert_eq!(mode, S_IFREG | 0o755);
            }
            if name == "dev/console" {
                assert_eq!((mode, field(entry, 9), field(entry, 10)), (S_IFCHR | 0o600, 5, 1));
            }
            names.push(name);
            at += data_at + (size as usize).next_multiple_of(4);
        }
        assert_eq!(names, ["usr", "usr/bin", "usr/bin/tool", "dev", "dev/console", "TRAILER!!!"]);
    }
}
