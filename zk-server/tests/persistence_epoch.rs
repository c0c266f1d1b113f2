//! `acceptedEpoch` / `currentEpoch` files, in Apache's text format.

use zk_server::storage::file_names::version_dir;
use zk_server::storage::{read_epoch_file, write_epoch_file, EpochFile};
use zk_server::ServerError;

#[test]
fn epoch_files_round_trip_in_apaches_format() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        read_epoch_file(dir.path(), EpochFile::Accepted).unwrap(),
        None
    );
    write_epoch_file(dir.path(), EpochFile::Accepted, 7).unwrap();
    write_epoch_file(dir.path(), EpochFile::Current, 6).unwrap();
    write_epoch_file(dir.path(), EpochFile::Accepted, 8).unwrap();
    let v2 = version_dir(dir.path());
    assert_eq!(
        std::fs::read_to_string(v2.join("acceptedEpoch")).unwrap(),
        "8"
    );
    assert_eq!(
        std::fs::read_to_string(v2.join("currentEpoch")).unwrap(),
        "6"
    );
    assert_eq!(
        read_epoch_file(dir.path(), EpochFile::Accepted).unwrap(),
        Some(8)
    );
    assert_eq!(
        read_epoch_file(dir.path(), EpochFile::Current).unwrap(),
        Some(6)
    );
    assert!(!v2.join("acceptedEpoch.tmp").exists());
}

#[test]
fn current_epoch_is_recovered_from_its_temporary_file() {
    // Apache's QuorumPeer does the same after a crash between write and rename.
    let dir = tempfile::tempdir().unwrap();
    let v2 = version_dir(dir.path());
    std::fs::create_dir_all(&v2).unwrap();
    std::fs::write(v2.join("currentEpoch.tmp"), "12").unwrap();
    assert_eq!(
        read_epoch_file(dir.path(), EpochFile::Current).unwrap(),
        Some(12)
    );
    assert_eq!(
        std::fs::read_to_string(v2.join("currentEpoch")).unwrap(),
        "12"
    );
}

#[test]
fn garbage_epoch_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let v2 = version_dir(dir.path());
    std::fs::create_dir_all(&v2).unwrap();
    std::fs::write(v2.join("acceptedEpoch"), "seven").unwrap();
    assert!(matches!(
        read_epoch_file(dir.path(), EpochFile::Accepted),
        Err(ServerError::Corrupt { .. })
    ));
    std::fs::write(v2.join("acceptedEpoch"), "9\n").unwrap();
    assert_eq!(
        read_epoch_file(dir.path(), EpochFile::Accepted).unwrap(),
        Some(9)
    );
}
