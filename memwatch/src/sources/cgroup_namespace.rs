//! Cgroup paths as the host names them when memwatch runs in a cgroup
//! namespace of its own: an unprivileged container on cgroup v2 (a pod
//! without `privileged`, a podman container by default).
//!
//! There /proc/PID/cgroup gives every path relative to memwatch's own
//! namespace root: its own cgroup is `/`, another pod's container is
//! `/../../kubepods.slice/...`. The cgroup file system mounted from the
//! host (a hostPath `/sys/fs/cgroup`) shows the host's whole tree, so the
//! namespace root is found once, as the directory of that tree whose
//! `cgroup.procs` lists memwatch itself, and every path read is joined to
//! it. Nothing changes in the host's namespace: the two namespace links are
//! the same, and the paths are used as read.
use std::path::{Path, PathBuf};

/// Directories the search visits at most: a host's cgroup tree has a few
/// thousand; past this the tree is not what it seems and paths stay as read.
const MAX_DIRS: usize = 200_000;

/// Where memwatch's cgroup namespace is rooted in the host's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupNamespace {
    /// The host's namespace (or one memwatch cannot tell apart from it):
    /// paths are the host's.
    Host,
    /// A namespace of its own, rooted at this host path ("/kubepods.slice/...").
    RootedAt(String),
    /// A namespace of its own whose root is not in the mounted tree (the
    /// container's own cgroup file system is mounted, not the host's).
    Unresolved,
}

impl CgroupNamespace {
    /// memwatch's namespace, from `proc_root` (its /proc) and the host's
    /// cgroup mount `cgroup_root` (/sys/fs/cgroup).
    pub fn discover(proc_root: &Path, cgroup_root: &Path) -> Self {
        let link = |pid: &str| std::fs::read_link(proc_root.join(pid).join("ns/cgroup")).ok();
        let (own, init) = (link("self"), link("1"));
        if own.is_none() || own == init {
            return Self::Host;
        }
        let found = own_pid(proc_root).and_then(|pid| {
            let relative = own_relative_path(proc_root)?;
            let dir = find_cgroup_of(&hierarchy(cgroup_root), pid)?;
            namespace_root(&dir, &relative)
        });
        let namespace = found.map_or(Self::Unresolved, Self::RootedAt);
        match &namespace {
            Self::RootedAt(root) => {
                tracing::info!(
                    root,
                    "memwatch runs in a cgroup namespace of its own; cgroup paths are resolved from it"
                )
            }
            _ => tracing::warn!(
                mount = %cgroup_root.display(),
                "memwatch runs in a cgroup namespace of its own and cannot find it in the mounted cgroup tree: \
                 other containers' limits cannot be read nor throttled; mount the host's /sys/fs/cgroup there \
                 (or run in the host's cgroup namespace)"
            ),
        }
        namespace
    }

    /// `path` as read from /proc/PID/cgroup, as the host names it; `None`
    /// for a path that still climbs (`..`) and would name a directory
    /// outside the cgroup tree if joined to it.
    pub fn host_path(&self, path: &str) -> Option<String> {
        match self {
            Self::RootedAt(root) => Some(join(root, path)),
            Self::Host | Self::Unresolved => (!path.split('/').any(|part| part == "..")).then(|| path.to_owned()),
        }
    }
}

/// The cgroup v2 tree, or the v1 memory controller's on a hybrid host.
fn hierarchy(cgroup_root: &Path) -> PathBuf {
    if cgroup_root.join("cgroup.controllers").exists() { cgroup_root.to_owned() } else { cgroup_root.join("memory") }
}

fn own_pid(proc_root: &Path) -> Option<u32> {
    std::fs::read_link(proc_root.join("self")).ok()?.to_str()?.parse().ok()
}

/// memwatch's own cgroup as its namespace shows it (usually "/"): the
/// unified line, or the memory controller's on a hybrid host.
fn own_relative_path(proc_root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(proc_root.join("self/cgroup")).ok()?;
    let path_of = |line: &str| line.splitn(3, ':').nth(2).map(str::to_owned);
    let memory = text.lines().find(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|c| c == "memory")));
    memory.or_else(|| text.lines().find(|l| l.starts_with("0::"))).and_then(path_of)
}

/// The directory under `hierarchy` whose cgroup.procs lists `pid`, as a
/// cgroup path ("/a/b"); breadth first, so the search stops near the top.
fn find_cgroup_of(hierarchy: &Path, pid: u32) -> Option<String> {
    let wanted = pid.to_string();
    let mut queue = std::collections::VecDeque::from([hierarchy.to_owned()]);
    let mut visited = 0;
    while let Some(dir) = queue.pop_front() {
        visited += 1;
        if visited > MAX_DIRS {
            return None;
        }
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        if procs.lines().any(|l| l == wanted) {
            let relative = dir.strip_prefix(hierarchy).ok()?.to_str()?;
            return Some(format!("/{relative}"));
        }
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                queue.push_back(entry.path());
            }
        }
    }
    None
}

/// The host path of the namespace root, given memwatch's cgroup as the host
/// names it (`found`) and as its namespace names it (`relative`).
fn namespace_root(found: &str, relative: &str) -> Option<String> {
    let relative = relative.trim_end_matches('/');
    if relative.split('/').any(|part| part == "..") {
        return None;
    }
    let root = found.strip_suffix(relative)?;
    Some(if root.is_empty() { "/".to_owned() } else { root.to_owned() })
}

/// `path` (relative to the namespace, `..` allowed) joined to `root`, with
/// `..` taken away; never above the host's root.
fn join(root: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in root.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b.slice";

    #[test]
    fn relative_paths_are_joined_to_the_namespace_root() {
        let ns = CgroupNamespace::RootedAt(format!("{POD}/cri-containerd-aaaa.scope"));
        let host = |path| ns.host_path(path).unwrap();
        assert_eq!(host("/"), format!("{POD}/cri-containerd-aaaa.scope"));
        assert_eq!(host("/../cri-containerd-bbbb.scope"), format!("{POD}/cri-containerd-bbbb.scope"));
        assert_eq!(host("/../../../../system.slice/cron.service"), "/system.slice/cron.service");
        assert_eq!(host("/../../../../../../.."), "/", "never above the root");
        assert_eq!(CgroupNamespace::Host.host_path("/system.slice/x").as_deref(), Some("/system.slice/x"));
        for unresolved in [CgroupNamespace::Host, CgroupNamespace::Unresolved] {
            assert_eq!(unresolved.host_path("/../../x"), None, "a climbing path is no cgroup to open");
        }
    }

    #[test]
    fn the_root_is_what_the_own_cgroup_adds_to_the_relative_path() {
        assert_eq!(
            namespace_root("/machine.slice/libpod-ab.scope", "/").as_deref(),
            Some("/machine.slice/libpod-ab.scope")
        );
        assert_eq!(
            namespace_root("/machine.slice/libpod-ab.scope/container", "/container").as_deref(),
            Some("/machine.slice/libpod-ab.scope")
        );
        assert_eq!(namespace_root("/a/b", "/a/b").as_deref(), Some("/"));
        assert_eq!(namespace_root("/a/b", "/c"), None, "the found cgroup is not this one");
        assert_eq!(namespace_root("/a/b", "/../b"), None);
    }

    /// A /proc whose `self` is pid 42 in cgroup `own` of a namespace
    /// different from pid 1's, and a v2 tree with pid 42 in `host_dir`.
    fn fixture(own: &str, host_dir: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let proc_root = dir.path().join("proc");
        let cgroup_root = dir.path().join("cgroup");
        for (pid, ns) in [("42", "cgroup:[4026532001]"), ("1", "cgroup:[4026531835]")] {
            std::fs::create_dir_all(proc_root.join(pid).join("ns")).unwrap();
            std::os::unix::fs::symlink(ns, proc_root.join(pid).join("ns/cgroup")).unwrap();
        }
        std::os::unix::fs::symlink("42", proc_root.join("self")).unwrap();
        std::fs::write(proc_root.join("42/cgroup"), format!("0::{own}\n")).unwrap();
        std::fs::create_dir_all(cgroup_root.join("system.slice/other.service")).unwrap();
        std::fs::write(cgroup_root.join("cgroup.controllers"), "memory\n").unwrap();
        std::fs::write(cgroup_root.join("system.slice/other.service/cgroup.procs"), "7\n420\n").unwrap();
        let mine = cgroup_root.join(host_dir.trim_start_matches('/'));
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::write(mine.join("cgroup.procs"), "41\n42\n").unwrap();
        (dir, proc_root, cgroup_root)
    }

    #[test]
    fn a_namespace_of_its_own_is_found_by_the_cgroup_listing_memwatch() {
        let (_dir, proc_root, cgroup_root) = fixture("/container", "/machine.slice/libpod-ab.scope/container");
        let ns = CgroupNamespace::discover(&proc_root, &cgroup_root);
        assert_eq!(ns, CgroupNamespace::RootedAt("/machine.slice/libpod-ab.scope".into()));
    }

    #[test]
    fn the_hosts_namespace_and_a_tree_without_memwatch_are_told_apart() {
        let (_dir, proc_root, cgroup_root) = fixture("/", "/machine.slice/libpod-ab.scope");
        std::fs::remove_file(proc_root.join("1/ns/cgroup")).unwrap();
        std::os::unix::fs::symlink("cgroup:[4026532001]", proc_root.join("1/ns/cgroup")).unwrap();
        assert_eq!(
            CgroupNamespace::discover(&proc_root, &cgroup_root),
            CgroupNamespace::Host,
            "same namespace as pid 1"
        );

        let (_dir, proc_root, cgroup_root) = fixture("/", "/machine.slice/libpod-ab.scope");
        std::fs::write(cgroup_root.join("machine.slice/libpod-ab.scope/cgroup.procs"), "41\n").unwrap();
        assert_eq!(CgroupNamespace::discover(&proc_root, &cgroup_root), CgroupNamespace::Unresolved);
        assert_eq!(CgroupNamespace::discover(&proc_root.join("absent"), &cgroup_root), CgroupNamespace::Host);
    }
}
