//! The filesystem package store: create, state, content installed by rename or copy,
//! delete, statuses and hashes persisted across reopening, and typed errors.

use opamp_client::packages::{
    FsPackagesStateProvider, PackageContent, PackageState, PackagesError, PackagesStateProvider,
};
use opamp_client::proto::{PackageStatus, PackageStatuses, PackageType};

async fn staged(provider: &FsPackagesStateProvider, name: &str, data: &[u8]) -> PackageContent {
    let path = provider.download_dir().join(name);
    tokio::fs::write(&path, data).await.unwrap();
    PackageContent::new(
        path,
        data.len() as u64,
        vec![7u8; 32],
        b"sig".to_vec(),
        "https://x/p.tgz",
    )
}

#[tokio::test]
async fn package_life_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let p = FsPackagesStateProvider::open(dir.path()).await.unwrap();
    assert!(p.packages().await.unwrap().is_empty());
    assert!(p.all_packages_hash().await.unwrap().is_empty());
    assert_eq!(p.package_state("a").await.unwrap(), None);
    assert_eq!(p.file_content_hash("a").await.unwrap(), None);

    p.create_package("a", PackageType::Addon).await.unwrap();
    assert!(matches!(
        p.create_package("a", PackageType::Addon).await,
        Err(PackagesError::AlreadyExists(_))
    ));
    assert_eq!(
        p.package_state("a").await.unwrap(),
        Some(PackageState::new(PackageType::Addon))
    );
    assert_eq!(
        p.file_content_hash("a").await.unwrap(),
        None,
        "no content yet"
    );

    let content = staged(&p, "dl-1", b"version one").await;
    p.update_content("a", &content).await.unwrap();
    assert_eq!(
        std::fs::read(p.content_path("a").unwrap()).unwrap(),
        b"version one"
    );
    assert_eq!(p.file_content_hash("a").await.unwrap(), Some(vec![7u8; 32]));
    assert!(
        !content.path().exists(),
        "same file system: the download was moved"
    );

    let state = PackageState::new(PackageType::Addon)
        .with_hash(b"h1".to_vec())
        .with_version("1.0");
    p.set_package_state("a", &state).await.unwrap();
    assert_eq!(p.package_state("a").await.unwrap(), Some(state.clone()));

    // Content from another directory (e.g. another file system) is copied.
    let elsewhere = tempfile::tempdir().unwrap();
    let path = elsewhere.path().join("v2");
    std::fs::write(&path, b"version two").unwrap();
    let copy = PackageContent::new(&path, 11, vec![8u8; 32], Vec::new(), "https://x/p2.tgz");
    p.update_content("a", &copy).await.unwrap();
    assert_eq!(
        std::fs::read(p.content_path("a").unwrap()).unwrap(),
        b"version two"
    );
    assert_eq!(p.file_content_hash("a").await.unwrap(), Some(vec![8u8; 32]));

    // Failed update: the previous content stays.
    let missing = PackageContent::new(
        elsewhere.path().join("nope"),
        1,
        vec![9u8; 32],
        Vec::new(),
        "u",
    );
    assert!(p.update_content("a", &missing).await.is_err());
    assert_eq!(
        std::fs::read(p.content_path("a").unwrap()).unwrap(),
        b"version two"
    );
    assert_eq!(p.file_content_hash("a").await.unwrap(), Some(vec![8u8; 32]));

    // Hashes, statuses and packages survive reopening.
    p.set_all_packages_hash(b"all").await.unwrap();
    let statuses = PackageStatuses {
        packages: [(
            "a".to_string(),
            PackageStatus {
                name: "a".into(),
                agent_has_version: "1.0".into(),
                ..Default::default()
            },
        )]
        .into(),
        server_provided_all_packages_hash: b"all".to_vec().into(),
        error_message: String::new(),
    };
    p.set_last_reported_statuses(&statuses).await.unwrap();
    drop(p);
    let p = FsPackagesStateProvider::open(dir.path()).await.unwrap();
    assert_eq!(p.packages().await.unwrap(), ["a"]);
    assert_eq!(p.all_packages_hash().await.unwrap(), b"all");
    assert_eq!(p.last_reported_statuses().await.unwrap(), Some(statuses));
    assert_eq!(p.package_state("a").await.unwrap(), Some(state));

    p.delete_package("a").await.unwrap();
    assert!(p.packages().await.unwrap().is_empty());
    assert!(!p.package_dir("a").unwrap().exists());
    p.delete_package("a").await.unwrap();
    assert!(matches!(
        p.set_package_state("a", &PackageState::new(PackageType::Addon))
            .await,
        Err(PackagesError::NotFound(_))
    ));
    let content = staged(&p, "dl-2", b"x").await;
    assert!(matches!(
        p.update_content("a", &content).await,
        Err(PackagesError::NotFound(_))
    ));
}

#[tokio::test]
async fn any_name_is_stored_safely() {
    let dir = tempfile::tempdir().unwrap();
    let p = FsPackagesStateProvider::open(dir.path()).await.unwrap();
    let names = [
        "",
        "../../etc/passwd",
        "Plugin",
        "plugin",
        "with space/and\\slash",
        "ünï",
    ];
    for name in names {
        p.create_package(name, PackageType::TopLevel).await.unwrap();
        let pkg_dir = p.package_dir(name).unwrap();
        assert_eq!(
            pkg_dir.parent().unwrap(),
            dir.path().join("packages"),
            "{name:?}"
        );
    }
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(p.packages().await.unwrap(), expected);
    assert!(matches!(
        p.create_package(&"x".repeat(500), PackageType::Addon).await,
        Err(PackagesError::InvalidPackageName { .. })
    ));
}

#[tokio::test]
async fn corrupt_state_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = FsPackagesStateProvider::open(dir.path()).await.unwrap();
    p.create_package("a", PackageType::Addon).await.unwrap();
    std::fs::write(
        p.package_dir("a").unwrap().join("package.json"),
        b"{not json",
    )
    .unwrap();
    assert!(matches!(
        p.package_state("a").await,
        Err(PackagesError::CorruptState { .. })
    ));
    std::fs::write(
        dir.path().join("last_reported_statuses.pb"),
        [0xff, 0xff, 0xff],
    )
    .unwrap();
    assert!(matches!(
        p.last_reported_statuses().await,
        Err(PackagesError::CorruptState { .. })
    ));
    // Oversized files are not read into memory.
    std::fs::write(dir.path().join("all_packages_hash"), vec![0u8; 1 << 20]).unwrap();
    assert!(matches!(
        p.all_packages_hash().await,
        Err(PackagesError::CorruptState { .. })
    ));
}
