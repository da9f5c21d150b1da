//! Binding the listeners: the Unix socket (root only) and, when enabled, TCP.
use std::{
    io,
    net::SocketAddr,
    os::unix::fs::{DirBuilderExt as _, FileTypeExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use tokio::net::{TcpListener, UnixListener, UnixStream};

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("creating {path}: {source}")]
    Dir { path: PathBuf, source: io::Error },
    #[error("{0} is in use by a running daemon (it accepts connections)")]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket: not removing it")]
    NotASocket(PathBuf),
    #[error("binding {what}: {source}")]
    Bind { what: String, source: io::Error },
}

/// Binds the API socket: parent directory created 0755, a stale socket left
/// by a crash removed (only if it is a socket nobody answers on), the new
/// one set to 0600 so that only root can connect.
pub async fn bind_unix(path: &Path) -> Result<UnixListener, ListenError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|source| ListenError::Dir { path: parent.to_owned(), source })?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).await.is_ok() {
                return Err(ListenError::InUse(path.to_owned()));
            }
            std::fs::remove_file(path)
                .map_err(|source| ListenError::Bind { what: format!("removing stale {}", path.display()), source })?;
        }
        Ok(_) => return Err(ListenError::NotASocket(path.to_owned())),
        Err(_) => {}
    }
    let bind_err = |source| ListenError::Bind { what: path.display().to_string(), source };
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    // Between bind and chmod the socket has the umask's mode; connecting
    // needs write permission, which the usual 022 umask gives only to root.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    Ok(listener)
}

pub async fn bind_tcp(address: SocketAddr) -> Result<TcpListener, ListenError> {
    TcpListener::bind(address).await.map_err(|source| ListenError::Bind { what: address.to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_socket_is_private_stale_ones_go_and_live_or_foreign_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/memwatch/api.sock");
        let listener = bind_unix(&path).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let parent_mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
        assert_eq!(parent_mode, 0o755);
        // A live daemon answers: refuse to steal its socket.
        assert!(matches!(bind_unix(&path).await, Err(ListenError::InUse(_))));
        drop(listener);
        // Its socket file outlives it: stale, so it is replaced.
        bind_unix(&path).await.unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(bind_unix(&file).await, Err(ListenError::NotASocket(_))));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    }
}
