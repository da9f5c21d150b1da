//! The systemd lane's root file system: Debian 12 from Debian's own
//! packages (`debootstrap`), packed as an initramfs that the kernel unpacks
//! into RAM and systemd runs from as PID 1. No disk image: the Debian
//! kernel then needs no block driver modules loaded before its root mounts.
//!
//! Built once and cached in the build output; the stamp names what it was
//! built from, so a change to the package list rebuilds it.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

use crate::shell;

const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";
/// systemd as init, dbus for its API (memwatch's SetUnitProperties calls),
/// on top of the minimal base (which has apt and dpkg for the .deb).
/// procps (priority important, so on any real Debian host, but not in
/// minbase) is the package's one dependency beyond libc: /bin/kill for
/// ExecReload=. The VM has no network, so apt-get must find it installed.
/// podman runs real containers; crun and netavark fill two of its
/// dependencies that are alternatives or virtual, which debootstrap does
/// not choose by itself (the containers run without a network).
const INCLUDE: &str = "systemd,systemd-sysv,dbus,procps,podman,crun,netavark";
/// Nothing the scenarios read (the downloaded .debs among them); trimming
/// halves the archive.
const TRIM: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/lib/apt/lists",
    "var/cache/apt/archives",
];

/// The packed base system (a newc cpio archive), built if not cached.
pub fn base_archive(out: &Path) -> anyhow::Result<PathBuf> {
    let tree = out.join("rootfs");
    let archive = out.join("rootfs.cpio");
    let stamp = out.join("rootfs.stamp");
    let wanted = format!("debootstrap --variant=minbase --include={INCLUDE} {SUITE} {MIRROR}; trimmed {TRIM:?}\n");
    if archive.is_file() && fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        eprintln!("rootfs: cached {}", archive.display());
        return Ok(archive);
    }
    let _ = fs::remove_file(&stamp);
    let partial = out.join("rootfs.partial");
    for dir in [&tree, &partial] {
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
    }
    shell::run(
        Command::new("debootstrap")
            .args(["--variant=minbase", &format!("--include={INCLUDE}"), SUITE])
            .arg(&partial)
            .arg(MIRROR),
    )
    .context("debootstrap of the systemd lane's Debian 12 root")?;
    for dir in TRIM {
        let path = partial.join(dir);
        if path.exists() {
            fs::remove_dir_all(&path).with_context(|| format!("trimming {}", path.display()))?;
        }
    }
    // apt-get refuses to install without its (empty) download directory.
    fs::create_dir_all(partial.join("var/cache/apt/archives/partial"))?;
    // Each boot is a new machine: systemd makes a machine id when empty.
    fs::write(partial.join("etc/machine-id"), "")?;
    fs::rename(&partial, &tree)?;
    pack_tree(&tree, &archive)?;
    fs::write(&stamp, wanted)?;
    Ok(archive)
}

/// A newc cpio archive of everything under `tree`, owners and modes kept.
pub fn pack_tree(tree: &Path, archive: &Path) -> anyhow::Result<()> {
    eprintln!("+ packing {} into {}", tree.display(), archive.display());
    let file = fs::File::create(archive).with_context(|| format!("creating {}", archive.display()))?;
    let mut cpio = Command::new("cpio")
        .args(["--null", "--create", "--format=newc", "--quiet"])
        .current_dir(tree)
        .stdin(Stdio::piped())
        .stdout(file)
        .spawn()
        .context("starting cpio")?;
    let names = shell::output(Command::new("find").args([".", "-print0"]).current_dir(tree))?;
    std::io::Write::write_all(&mut cpio.stdin.take().context("cpio stdin")?, names.as_bytes())?;
    let status = cpio.wait()?;
    if !status.success() {
        bail!("cpio failed on {}: {status}", tree.display());
    }
    Ok(())
}
