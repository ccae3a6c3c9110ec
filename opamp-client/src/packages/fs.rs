//! A [`PackagesStateProvider`] that keeps packages in a directory.

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::provider::{PackageContent, PackageState, PackagesStateProvider};
use super::{PackagesError, hex};
use crate::proto::{Message, PackageStatuses, PackageType};

const PACKAGES_DIR: &str = "packages";
const DOWNLOADS_DIR: &str = "downloads";
const ALL_PACKAGES_HASH_FILE: &str = "all_packages_hash";
const STATUSES_FILE: &str = "last_reported_statuses.pb";
const META_FILE: &str = "package.json";
const CONTENT_FILE: &str = "content";
const DIR_PREFIX: &str = "pkg-";

/// Largest metadata file read back.
const MAX_META_SIZE: u64 = 64 * 1024;
/// Largest all-packages hash file read back.
const MAX_HASH_SIZE: u64 = 4 * 1024;
/// Largest stored statuses file read back.
const MAX_STATUSES_SIZE: u64 = 16 * 1024 * 1024;
/// Longest package directory name (file systems allow 255 bytes).
const MAX_DIR_NAME: usize = 200;

/// Keeps packages in a directory, one subdirectory per package:
///
/// ```text
/// <root>/all_packages_hash              the all-packages hash (raw bytes)
/// <root>/last_reported_statuses.pb      the last PackageStatuses (protobuf)
/// <root>/packages/pkg-<name>/package.json   name, type, hash, version, content hash
/// <root>/packages/pkg-<name>/content        the package file
/// <root>/downloads/                     partial and verified downloads
/// ```
///
/// Package names are escaped in directory names (lower-case letters, digits, `-`, `_`
/// and `.` are kept, every other byte becomes `%XX`), so any name, including the empty
/// name of a single top-level package, is safe on every file system. Every file is written
/// to a temporary file and renamed into place, so a crash leaves the old or the new version,
/// never a mix; content is installed by renaming the verified download.
///
/// ```no_run
/// # async fn demo() -> Result<(), opamp_client::packages::PackagesError> {
/// use opamp_client::packages::FsPackagesStateProvider;
///
/// let provider = FsPackagesStateProvider::open("/var/lib/my-agent/packages").await?;
/// let content = provider.content_path("my-plugin")?; // where the installed file lives
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FsPackagesStateProvider {
    root: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    name: String,
    #[serde(rename = "type")]
    package_type: i32,
    hash: String,
    version: String,
    content_hash: Option<String>,
}

impl FsPackagesStateProvider {
    /// Opens (creating if needed) the package store at `root`.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, PackagesError> {
        let root = root.into();
        for dir in [root.join(PACKAGES_DIR), root.join(DOWNLOADS_DIR)] {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| PackagesError::io("create", &dir, e))?;
        }
        Ok(Self { root })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a package.
    pub fn package_dir(&self, name: &str) -> Result<PathBuf, PackagesError> {
        Ok(self.root.join(PACKAGES_DIR).join(dir_name(name)?))
    }

    /// Where the content of an installed package is.
    pub fn content_path(&self, name: &str) -> Result<PathBuf, PackagesError> {
        Ok(self.package_dir(name)?.join(CONTENT_FILE))
    }

    async fn read_meta(&self, name: &str) -> Result<Option<Meta>, PackagesError> {
        let path = self.package_dir(name)?.join(META_FILE);
        let Some(bytes) = read_capped(&path, MAX_META_SIZE).await? else {
            return Ok(None);
        };
        let meta: Meta =
            serde_json::from_slice(&bytes).map_err(|e| PackagesError::CorruptState {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if meta.name != name {
            return Err(PackagesError::CorruptState {
                path,
                reason: format!("holds package {:?}", meta.name),
            });
        }
        Ok(Some(meta))
    }

    async fn write_meta(&self, meta: &Meta) -> Result<(), PackagesError> {
        let dir = self.package_dir(&meta.name)?;
        let bytes = serde_json::to_vec_pretty(meta).map_err(|e| PackagesError::CorruptState {
            path: dir.join(META_FILE),
            reason: e.to_string(),
        })?;
        write_atomic(&dir.join(META_FILE), &bytes).await
    }

    async fn existing_meta(&self, name: &str) -> Result<Meta, PackagesError> {
        self.read_meta(name)
            .await?
            .ok_or_else(|| PackagesError::NotFound(name.to_owned()))
    }
}

#[async_trait]
impl PackagesStateProvider for FsPackagesStateProvider {
    async fn all_packages_hash(&self) -> Result<Vec<u8>, PackagesError> {
        let path = self.root.join(ALL_PACKAGES_HASH_FILE);
        Ok(read_capped(&path, MAX_HASH_SIZE).await?.unwrap_or_default())
    }

    async fn set_all_packages_hash(&self, hash: &[u8]) -> Result<(), PackagesError> {
        write_atomic(&self.root.join(ALL_PACKAGES_HASH_FILE), hash).await
    }

    async fn packages(&self) -> Result<Vec<String>, PackagesError> {
        let dir = self.root.join(PACKAGES_DIR);
        let mut entries = tokio::fs::read_dir(&dir)
            .await
            .map_err(|e| PackagesError::io("list", &dir, e))?;
        let mut names = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| PackagesError::io("list", &dir, e))?
        {
            let file_name = entry.file_name();
            let Some(escaped) = file_name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
                continue;
            };
            let Some(name) = unescape(escaped) else {
                tracing::warn!(dir = ?entry.path(), "ignoring a package directory with an unreadable name");
                continue;
            };
            if self.read_meta(&name).await?.is_some() {
                names.push(name);
            } else {
                tracing::warn!(dir = ?entry.path(), "ignoring a package directory without metadata");
            }
        }
        names.sort();
        Ok(names)
    }

    async fn package_state(&self, name: &str) -> Result<Option<PackageState>, PackagesError> {
        Ok(self.read_meta(name).await?.map(|meta| PackageState {
            package_type: PackageType::try_from(meta.package_type).unwrap_or(PackageType::TopLevel),
            hash: hex::decode(&meta.hash).unwrap_or_default(),
            version: meta.version,
        }))
    }

    async fn set_package_state(
        &self,
        name: &str,
        state: &PackageState,
    ) -> Result<(), PackagesError> {
        let mut meta = self.existing_meta(name).await?;
        meta.package_type = state.package_type as i32;
        meta.hash = hex::encode(&state.hash);
        meta.version.clone_from(&state.version);
        self.write_meta(&meta).await
    }

    async fn create_package(
        &self,
        name: &str,
        package_type: PackageType,
    ) -> Result<(), PackagesError> {
        if self.read_meta(name).await?.is_some() {
            return Err(PackagesError::AlreadyExists(name.to_owned()));
        }
        let dir = self.package_dir(name)?;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| PackagesError::io("create", &dir, e))?;
        // A leftover content file (from a crash between delete steps) is not this package's.
        remove_if_exists(&dir.join(CONTENT_FILE)).await?;
        self.write_meta(&Meta {
            name: name.to_owned(),
            package_type: package_type as i32,
            hash: String::new(),
            version: String::new(),
            content_hash: None,
        })
        .await
    }

    async fn file_content_hash(&self, name: &str) -> Result<Option<Vec<u8>>, PackagesError> {
        let Some(meta) = self.read_meta(name).await? else {
            return Ok(None);
        };
        let content = self.content_path(name)?;
        let exists = tokio::fs::try_exists(&content)
            .await
            .map_err(|e| PackagesError::io("inspect", &content, e))?;
        Ok(meta
            .content_hash
            .filter(|_| exists)
            .and_then(|h| hex::decode(&h)))
    }

    async fn update_content(
        &self,
        name: &str,
        content: &PackageContent,
    ) -> Result<(), PackagesError> {
        let mut meta = self.existing_meta(name).await?;
        let dir = self.package_dir(name)?;
        let dest = dir.join(CONTENT_FILE);
        let tmp = temp_path(&dest);
        // Same file system: move the verified download into place. Otherwise copy it.
        if tokio::fs::rename(content.path(), &tmp).await.is_err() {
            let result = copy_synced(content, &tmp).await;
            if result.is_err() {
                let _ = tokio::fs::remove_file(&tmp).await;
            }
            result?;
        }
        if let Err(e) = tokio::fs::rename(&tmp, &dest).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(PackagesError::io("rename", &tmp, e));
        }
        sync_dir(&dir).await;
        meta.content_hash = Some(hex::encode(content.content_hash()));
        self.write_meta(&meta).await
    }

    async fn delete_package(&self, name: &str) -> Result<(), PackagesError> {
        let dir = self.package_dir(name)?;
        // Rename first so that a crash never leaves a half-deleted package that looks valid.
        let trash = self
            .root
            .join(PACKAGES_DIR)
            .join(format!(".trash-{:016x}", rand::random::<u64>()));
        match tokio::fs::rename(&dir, &trash).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(PackagesError::io("rename", &dir, e)),
        }
        tokio::fs::remove_dir_all(&trash)
            .await
            .map_err(|e| PackagesError::io("delete", &trash, e))
    }

    async fn last_reported_statuses(&self) -> Result<Option<PackageStatuses>, PackagesError> {
        let path = self.root.join(STATUSES_FILE);
        let Some(bytes) = read_capped(&path, MAX_STATUSES_SIZE).await? else {
            return Ok(None);
        };
        PackageStatuses::decode(bytes.as_slice())
            .map(Some)
            .map_err(|e| PackagesError::CorruptState {
                path,
                reason: e.to_string(),
            })
    }

    async fn set_last_reported_statuses(
        &self,
        statuses: &PackageStatuses,
    ) -> Result<(), PackagesError> {
        write_atomic(&self.root.join(STATUSES_FILE), &statuses.encode_to_vec()).await
    }

    fn download_dir(&self) -> PathBuf {
        self.root.join(DOWNLOADS_DIR)
    }
}

/// `pkg-` followed by the escaped name.
fn dir_name(name: &str) -> Result<String, PackagesError> {
    let mut out = String::from(DIR_PREFIX);
    for b in name.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push_str(&hex::encode(&[b]));
        }
    }
    if out.len() > MAX_DIR_NAME {
        return Err(PackagesError::InvalidPackageName {
            name: name.to_owned(),
            reason: "too long to be a directory name",
        });
    }
    Ok(out)
}

fn unescape(escaped: &str) -> Option<String> {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let pair = escaped.get(i + 1..i + 3)?;
            out.push(*hex::decode(pair)?.first()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn temp_path(dest: &Path) -> PathBuf {
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    dest.with_file_name(format!(".{name}.tmp-{:016x}", rand::random::<u64>()))
}

/// Reads a whole file of at most `max` bytes; `None` if it does not exist.
async fn read_capped(path: &Path, max: u64) -> Result<Option<Vec<u8>>, PackagesError> {
    use tokio::io::AsyncReadExt;
    let file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PackagesError::io("open", path, e)),
    };
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| PackagesError::io("read", path, e))?;
    if bytes.len() as u64 > max {
        return Err(PackagesError::CorruptState {
            path: path.to_owned(),
            reason: format!("larger than {max} bytes"),
        });
    }
    Ok(Some(bytes))
}

/// Writes `bytes` to a temporary file, syncs it and renames it over `path`.
async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PackagesError> {
    let tmp = temp_path(path);
    let result = async {
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| PackagesError::io("create", &tmp, e))?;
        file.write_all(bytes)
            .await
            .map_err(|e| PackagesError::io("write", &tmp, e))?;
        file.sync_all()
            .await
            .map_err(|e| PackagesError::io("sync", &tmp, e))?;
        drop(file);
        tokio::fs::rename(&tmp, path)
            .await
            .map_err(|e| PackagesError::io("rename", &tmp, e))
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    } else if let Some(dir) = path.parent() {
        sync_dir(dir).await;
    }
    result
}

async fn copy_synced(content: &PackageContent, dest: &Path) -> Result<(), PackagesError> {
    let mut src = content.open().await?;
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| PackagesError::io("create", dest, e))?;
    tokio::io::copy(&mut src, &mut file)
        .await
        .map_err(|e| PackagesError::io("copy to", dest, e))?;
    file.sync_all()
        .await
        .map_err(|e| PackagesError::io("sync", dest, e))
}

async fn remove_if_exists(path: &Path) -> Result<(), PackagesError> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PackagesError::io("delete", path, e)),
    }
}

/// Makes a rename in `dir` durable (best effort; a no-op where directories cannot be synced).
async fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = tokio::fs::File::open(dir).await
        && let Err(error) = d.sync_all().await
    {
        tracing::debug!(%error, dir = %dir.display(), "cannot sync directory");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_escape_and_round_trip() {
        for name in ["", "otelcol", "My Plugin/../x", "ünïcode", "a%b", ".."] {
            let dir = dir_name(name).unwrap();
            assert!(dir.starts_with(DIR_PREFIX));
            assert!(!dir.contains('/') && !dir.contains('\\'));
            assert_eq!(unescape(&dir[DIR_PREFIX.len()..]).as_deref(), Some(name));
        }
        // Case-insensitive file systems must not merge "A" and "a".
        assert_ne!(
            dir_name("A").unwrap().to_lowercase(),
            dir_name("a").unwrap()
        );
        assert!(dir_name(&"x".repeat(300)).is_err());
    }
}
