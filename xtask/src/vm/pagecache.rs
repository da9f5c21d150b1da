//! A file whose pages are page cache the kernel may reclaim, for the
//! `memory.reclaim` scenario. The initramfs is RAM that is never reclaimed,
//! so the file lives on a squashfs image mounted through a loop device; the
//! VM kernel's `loop` and `squashfs` modules come from the host's
//! linux-image package.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{initramfs::Archive, shell};

/// Where the test finds the file in the VM (tests/tests/daemon_actions.rs).
pub const FILE_IN_VM: &str = "/mnt/pagecache/big";
/// The file's size: above the scenario's critical level on its own.
const FILE_MIB: u64 = 160;
const IMAGE_IN_VM: &str = "data/pagecache.sqfs";
const MODULES: &[&str] = &["kernel/drivers/block/loop.ko", "kernel/fs/squashfs/squashfs.ko"];

pub struct PageCache {
    image: PathBuf,
    modules: Vec<PathBuf>,
}

/// The image (made once: a sparse file compresses to almost nothing) and
/// the modules of `kernel`'s version.
pub fn prepare(kernel: &Path, out: &Path) -> anyhow::Result<PageCache> {
    let name = kernel.file_name().and_then(|n| n.to_str()).context("kernel file name")?;
    let version = name.strip_prefix("vmlinuz-").context("kernel named vmlinuz-VERSION")?;
    let modules: Vec<PathBuf> = MODULES.iter().map(|m| Path::new("/lib/modules").join(version).join(m)).collect();
    if let Some(missing) = modules.iter().find(|m| !m.is_file()) {
        bail!("{} is missing (the linux-image package for {version} installs it)", missing.display());
    }
    let image = out.join("pagecache.sqfs");
    if !image.is_file() {
        let source = out.join("pagecache");
        fs::create_dir_all(&source)?;
        fs::File::create(source.join("big"))?.set_len(FILE_MIB << 20)?;
        shell::run(Command::new("mksquashfs").arg(&source).arg(&image).args(["-noappend", "-quiet"]))?;
    }
    Ok(PageCache { image, modules })
}

impl PageCache {
    pub fn add_to(&self, archive: &mut Archive<impl std::io::Write>) -> anyhow::Result<()> {
        archive.copy(IMAGE_IN_VM, &self.image).context("adding the page-cache image")?;
        for module in &self.modules {
            let name = module.file_name().and_then(|n| n.to_str()).context("module name")?;
            archive
                .copy(&format!("lib/modules/{name}"), module)
                .with_context(|| format!("adding {}", module.display()))?;
        }
        Ok(())
    }
}

/// The init script's lines that load the modules and mount the image.
pub fn init_lines() -> String {
    let dir = Path::new(FILE_IN_VM).parent().and_then(Path::to_str).unwrap_or("/mnt/pagecache");
    format!(
        "insmod /lib/modules/loop.ko && insmod /lib/modules/squashfs.ko && mkdir -p {dir} && \
         mount -t squashfs -o loop,ro /{IMAGE_IN_VM} {dir} && echo \"memwatch-vm: page-cache file {FILE_IN_VM}\"\n"
    )
}
