//! [`FileStateStore`]: state kept in files of one directory, written atomically.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use opamp_proto::{InstanceUid, Message, RemoteConfigStatus};

use super::PersistedConnectionSettings;
use super::StateStore;
use super::write_atomic;
use crate::Error;

const INSTANCE_UID: &str = "instance_uid";
const REMOTE_CONFIG_STATUS: &str = "remote_config_status.pb";
const CONNECTION_SETTINGS: &str = "connection_settings.json";

/// Largest state file read back (a connection settings snapshot with certificates is a few
/// KiB; anything near this limit is not a file this store wrote).
const MAX_FILE_SIZE: u64 = 4 * 1024 * 1024;

/// A [`StateStore`] in a directory, one file per piece of state:
///
/// * `instance_uid`: the UID as canonical UUID text;
/// * `remote_config_status.pb`: the `RemoteConfigStatus` protobuf;
/// * `connection_settings.json`: the connection settings snapshot (it holds secrets, so the
///   file is created readable by its owner only, on Unix).
///
/// Every write goes to a temporary file in the same directory, is flushed to disk, then
/// renamed over the old file: a crash leaves either the old or the new content, never a torn
/// file.
///
/// ```
/// use opamp_client::persistence::{FileStateStore, StateStore};
/// use opamp_client::proto::{InstanceUid, RemoteConfigStatus};
///
/// let dir = tempfile::tempdir()?;
/// let store = FileStateStore::new(dir.path())?;
/// let uid = InstanceUid::new_v7();
/// store.save_instance_uid(uid)?;
/// assert_eq!(FileStateStore::new(dir.path())?.load_instance_uid()?, Some(uid));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FileStateStore {
    dir: PathBuf,
    /// Serialises writers inside the process (temporary file names are unique anyway).
    write_lock: Mutex<()>,
}

impl FileStateStore {
    /// A store in `dir`, created (with its parents) if missing.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| Error::Persistence {
            operation: "create directory",
            path: dir.clone(),
            source,
        })?;
        Ok(FileStateStore {
            dir,
            write_lock: Mutex::new(()),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        let path = self.dir.join(name);
        let io_err = |source| Error::Persistence {
            operation: "read",
            path: path.clone(),
            source,
        };
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io_err(err)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_FILE_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        if bytes.len() as u64 > MAX_FILE_SIZE {
            return Err(Error::CorruptState {
                what: "state file",
                reason: format!("{} is larger than {MAX_FILE_SIZE} bytes", path.display()),
            });
        }
        Ok(Some(bytes))
    }

    fn write(&self, name: &str, bytes: &[u8], private: bool) -> Result<(), Error> {
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = self.dir.join(name);
        write_atomic(&path, bytes, private).map_err(|source| Error::Persistence {
            operation: "write",
            path,
            source,
        })
    }
}

impl StateStore for FileStateStore {
    fn load_instance_uid(&self) -> Result<Option<InstanceUid>, Error> {
        let Some(bytes) = self.read(INSTANCE_UID)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        text.trim()
            .parse::<InstanceUid>()
            .map(Some)
            .map_err(|err| Error::CorruptState {
                what: "instance UID",
                reason: err.to_string(),
            })
    }

    fn save_instance_uid(&self, uid: InstanceUid) -> Result<(), Error> {
        self.write(INSTANCE_UID, format!("{uid}\n").as_bytes(), false)
    }

    fn load_remote_config_status(&self) -> Result<Option<RemoteConfigStatus>, Error> {
        let Some(bytes) = self.read(REMOTE_CONFIG_STATUS)? else {
            return Ok(None);
        };
        RemoteConfigStatus::decode(bytes.as_slice())
            .map(Some)
            .map_err(|err| Error::CorruptState {
                what: "remote config status",
                reason: err.to_string(),
            })
    }

    fn save_remote_config_status(&self, status: &RemoteConfigStatus) -> Result<(), Error> {
        self.write(REMOTE_CONFIG_STATUS, &status.encode_to_vec(), false)
    }

    fn load_connection_settings(&self) -> Result<Option<PersistedConnectionSettings>, Error> {
        let Some(bytes) = self.read(CONNECTION_SETTINGS)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| Error::CorruptState {
                what: "connection settings",
                reason: err.to_string(),
            })
    }

    fn save_connection_settings(
        &self,
        settings: &PersistedConnectionSettings,
    ) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(settings).map_err(|err| Error::CorruptState {
            what: "connection settings",
            reason: err.to_string(),
        })?;
        self.write(CONNECTION_SETTINGS, &bytes, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection_settings::{ConnectionSettingsSnapshot, OpampConnectionParams};

    #[test]
    fn round_trips_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path().join("nested/state")).unwrap();
        assert_eq!(store.load_instance_uid().unwrap(), None);
        assert_eq!(store.load_remote_config_status().unwrap(), None);
        assert_eq!(store.load_connection_settings().unwrap(), None);

        let uid = InstanceUid::new_v7();
        let status = RemoteConfigStatus {
            last_remote_config_hash: vec![1, 2, 3].into(),
            status: 1,
            error_message: String::new(),
        };
        let snapshot = PersistedConnectionSettings::new(
            "wss://example.com/v1/opamp",
            ConnectionSettingsSnapshot::new(
                OpampConnectionParams::new("wss://example.com/v1/opamp")
                    .with_header("X-API-Key", "k"),
            ),
        );
        store.save_instance_uid(uid).unwrap();
        store.save_remote_config_status(&status).unwrap();
        store.save_connection_settings(&snapshot).unwrap();
        let uid2 = InstanceUid::new_v7();
        store.save_instance_uid(uid2).unwrap();

        let reopened = FileStateStore::new(store.dir()).unwrap();
        assert_eq!(reopened.load_instance_uid().unwrap(), Some(uid2));
        assert_eq!(reopened.load_remote_config_status().unwrap(), Some(status));
        assert_eq!(reopened.load_connection_settings().unwrap(), Some(snapshot));
        let leftovers: Vec<_> = fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.dir().join(CONNECTION_SETTINGS))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "secrets readable by the owner only");
        }
    }

    #[test]
    fn corrupt_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path()).unwrap();
        fs::write(dir.path().join(INSTANCE_UID), "not a uuid").unwrap();
        fs::write(dir.path().join(REMOTE_CONFIG_STATUS), [0xff, 0xff, 0xff]).unwrap();
        fs::write(dir.path().join(CONNECTION_SETTINGS), "{").unwrap();
        assert!(matches!(
            store.load_instance_uid(),
            Err(Error::CorruptState { .. })
        ));
        assert!(matches!(
            store.load_remote_config_status(),
            Err(Error::CorruptState { .. })
        ));
        assert!(matches!(
            store.load_connection_settings(),
            Err(Error::CorruptState { .. })
        ));
        let big = File::create(dir.path().join(INSTANCE_UID)).unwrap();
        big.set_len(MAX_FILE_SIZE + 10).unwrap();
        assert!(matches!(
            store.load_instance_uid(),
            Err(Error::CorruptState { .. })
        ));
    }
}
