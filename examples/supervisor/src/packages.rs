//! Package updates of the agent executable.
//!
//! The OpAMP client downloads offered packages and checks their SHA-256 (and signature) before
//! handing them to this store. Add-on packages are kept as they are. The **top-level**
//! package is the agent executable: its file is copied to `<storage>/bin/agent-<hash>`, made
//! executable, and handed to the supervisor loop, which swaps it in and restarts the agent.
//! The install succeeds (`INSTALLED`) only once the new agent is healthy within
//! `config_apply_timeout`; otherwise the previous executable is restored and the package is
//! reported `INSTALL_FAILED` with the reason.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use opamp_client::packages::{
    FsPackagesStateProvider, PackageContent, PackageState, PackagesError, PackagesStateProvider,
};
use opamp_client::proto::{PackageStatuses, PackageType};
use tokio::sync::{mpsc, oneshot};

use crate::remote::hex;

fn io_error(action: &str, path: &Path, error: std::io::Error) -> PackagesError {
    PackagesError::provider(std::io::Error::new(
        error.kind(),
        format!("cannot {action} {}: {error}", path.display()),
    ))
}

/// A new executable for the supervisor loop to try.
#[derive(Debug)]
pub struct InstallRequest {
    /// The executable (in the binaries directory).
    pub executable: PathBuf,
    /// Where to send the outcome: `Ok` once healthy, `Err(reason)` after a rollback.
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// The package store of the supervisor.
#[derive(Debug)]
pub struct AgentPackages {
    inner: FsPackagesStateProvider,
    bin_dir: PathBuf,
    installs: mpsc::Sender<InstallRequest>,
    wait_limit: Duration,
}

impl AgentPackages {
    /// Packages kept in `inner`; executables copied to `bin_dir`; install requests sent to
    /// `installs`, each waited for at most `wait_limit`.
    pub fn new(
        inner: FsPackagesStateProvider,
        bin_dir: PathBuf,
        installs: mpsc::Sender<InstallRequest>,
        wait_limit: Duration,
    ) -> Self {
        AgentPackages {
            inner,
            bin_dir,
            installs,
            wait_limit,
        }
    }

    async fn stage(&self, content: &PackageContent) -> Result<PathBuf, PackagesError> {
        let source = content.path().to_owned();
        let dir = self.bin_dir.clone();
        let target = self
            .bin_dir
            .join(format!("agent-{}", hex(content.content_hash())));
        let staged = target.clone();
        tokio::task::spawn_blocking(move || stage_executable(&source, &dir, &staged))
            .await
            .map_err(|err| PackagesError::provider(std::io::Error::other(err.to_string())))??;
        Ok(target)
    }

    async fn install_executable(
        &self,
        name: &str,
        content: &PackageContent,
    ) -> Result<(), PackagesError> {
        let executable = self.stage(content).await?;
        tracing::info!(package = %name, executable = %executable.display(), "new agent executable downloaded and verified; swapping it in");
        let (reply, outcome) = oneshot::channel();
        self.installs
            .send(InstallRequest {
                executable: executable.clone(),
                reply,
            })
            .await
            .map_err(|_| PackagesError::provider("the supervisor is stopping"))?;
        let result = match tokio::time::timeout(self.wait_limit, outcome).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the supervisor stopped before the new agent was checked".into()),
            Err(_) => Err("no outcome for the new agent executable in time".into()),
        };
        match result {
            Ok(()) => self.inner.update_content(name, content).await,
            Err(reason) => {
                if let Err(err) = tokio::fs::remove_file(&executable).await {
                    tracing::debug!(%err, "cannot remove the refused executable");
                }
                Err(PackagesError::provider(reason))
            }
        }
    }
}

/// Opens `path` for reading without following a symbolic link at its last component.
fn open_no_follow(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(nix::libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// Copies the package file `source` to the executable `target` in `dir`: through a new
/// temporary file of `dir` with an unpredictable name, created exclusively (`O_EXCL`: never
/// an existing file or a symbolic link planted there), filled, made executable and flushed
/// through its own handle (no path is followed again), then renamed over `target` (a rename
/// replaces a link at `target`, it does not follow it). The source is opened without
/// following a link and must be a regular file. On an error the temporary file is removed.
pub fn stage_executable(source: &Path, dir: &Path, target: &Path) -> Result<(), PackagesError> {
    std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
    let mut input = open_no_follow(source).map_err(|e| io_error("open", source, e))?;
    let meta = input.metadata().map_err(|e| io_error("read", source, e))?;
    if !meta.is_file() {
        return Err(io_error(
            "copy",
            source,
            std::io::Error::other("not a regular file"),
        ));
    }
    let mut staged = tempfile::Builder::new()
        .prefix(".agent-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io_error("create a temporary file in", dir, e))?;
    let tmp = staged.path().to_owned();
    std::io::copy(&mut input, staged.as_file_mut()).map_err(|e| io_error("copy to", &tmp, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        staged
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o755))
            .map_err(|e| io_error("make executable", &tmp, e))?;
    }
    staged
        .as_file()
        .sync_all()
        .map_err(|e| io_error("sync", &tmp, e))?;
    staged
        .persist(target)
        .map_err(|e| io_error("rename to", target, e.error))?;
    #[cfg(unix)]
    if let Ok(dir_handle) = std::fs::File::open(dir) {
        let _ = dir_handle.sync_all();
    }
    Ok(())
}

/// Removes the executables of `bin_dir` other than `keep`.
pub fn remove_other_executables(bin_dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(bin_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_agent = entry.file_name().to_string_lossy().starts_with("agent-");
        if is_agent && path != keep {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(file = %path.display(), "removed an old agent executable"),
                Err(err) => {
                    tracing::warn!(%err, file = %path.display(), "cannot remove an old agent executable")
                }
            }
        }
    }
}

#[async_trait]
impl PackagesStateProvider for AgentPackages {
    async fn all_packages_hash(&self) -> Result<Vec<u8>, PackagesError> {
        self.inner.all_packages_hash().await
    }

    async fn set_all_packages_hash(&self, hash: &[u8]) -> Result<(), PackagesError> {
        self.inner.set_all_packages_hash(hash).await
    }

    async fn packages(&self) -> Result<Vec<String>, PackagesError> {
        self.inner.packages().await
    }

    async fn package_state(&self, name: &str) -> Result<Option<PackageState>, PackagesError> {
        self.inner.package_state(name).await
    }

    async fn set_package_state(
        &self,
        name: &str,
        state: &PackageState,
    ) -> Result<(), PackagesError> {
        self.inner.set_package_state(name, state).await
    }

    async fn create_package(
        &self,
        name: &str,
        package_type: PackageType,
    ) -> Result<(), PackagesError> {
        self.inner.create_package(name, package_type).await
    }

    async fn file_content_hash(&self, name: &str) -> Result<Option<Vec<u8>>, PackagesError> {
        self.inner.file_content_hash(name).await
    }

    async fn update_content(
        &self,
        name: &str,
        content: &PackageContent,
    ) -> Result<(), PackagesError> {
        let top_level = self
            .inner
            .package_state(name)
            .await?
            .is_some_and(|state| state.package_type == PackageType::TopLevel);
        if top_level {
            self.install_executable(name, content).await
        } else {
            self.inner.update_content(name, content).await
        }
    }

    async fn delete_package(&self, name: &str) -> Result<(), PackagesError> {
        self.inner.delete_package(name).await
    }

    async fn last_reported_statuses(&self) -> Result<Option<PackageStatuses>, PackagesError> {
        self.inner.last_reported_statuses().await
    }

    async fn set_last_reported_statuses(
        &self,
        statuses: &PackageStatuses,
    ) -> Result<(), PackagesError> {
        self.inner.set_last_reported_statuses(statuses).await
    }

    fn download_dir(&self) -> PathBuf {
        self.inner.download_dir()
    }
}
