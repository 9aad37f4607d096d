//! `Checkpoint` on local paths and on a HuggingFace hub cache laid out in a temp folder: names,
//! file hashes (LFS blobs by their names, nothing else trusted), revisions, and the errors bad
//! input gets. The tests that set HF_HUB_CACHE and friends are in checkpoint_hub_env.rs.

mod common;

use std::path::{Path, PathBuf};

use common::{device, fixtures, smollm2_gguf};
use model::load::checkpoint::{CheckpointFile, files_sha256};
use model::load::hub::{self, HubId};
use model::{AttentionSpec, Checkpoint};
use sha2::{Digest, Sha256};

const COMMIT_MAIN: &str = "0123456789abcdef0123456789abcdef01234567";
const COMMIT_TAG: &str = "89abcdef0123456789abcdef0123456789abcdef";
/// Stands for the sha256 of the weights: an LFS blob is named by it and must not be re-hashed,
/// so the test names the blob with a value that is *not* the content's hash.
const LFS_NAME: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn tiny_dir() -> PathBuf {
    fixtures().join("tiny/tiny-llama-gqa")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `<cache>/models--org--tiny` holding the tiny model at two commits: `main` and tag `v1.0`.
/// config.json is a git blob (sha1-named), model.safetensors an LFS blob.
fn cache_with_tiny_model() -> tempfile::TempDir {
    let cache = tempfile::tempdir().unwrap();
    let repo = cache.path().join("models--org--tiny");
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    let config_blob = "1111111111111111111111111111111111111111";
    std::fs::copy(tiny_dir().join("config.json"), repo.join("blobs").join(config_blob)).unwrap();
    std::fs::copy(tiny_dir().join("model.safetensors"), repo.join("blobs").join(LFS_NAME)).unwrap();
    for commit in [COMMIT_MAIN, COMMIT_TAG] {
        let snapshot = repo.join("snapshots").join(commit);
        std::fs::create_dir_all(&snapshot).unwrap();
        let link = |blob: &str, name: &str| {
            std::os::unix::fs::symlink(format!("../../blobs/{blob}"), snapshot.join(name)).unwrap()
        };
        link(config_blob, "config.json");
        link(LFS_NAME, "model.safetensors");
    }
    std::fs::write(repo.join("refs/main"), COMMIT_MAIN).unwrap();
    std::fs::write(repo.join("refs/v1.0"), format!("{COMMIT_TAG}\n")).unwrap();
    cache
}

fn id(text: &str) -> HubId {
    HubId::parse(text).unwrap()
}

#[test]
fn hub_ids_parse_and_other_text_does_not() {
    assert_eq!(id("org/name").repo, "org/name");
    assert_eq!(id("org/name").revision, None);
    let with = id("mistralai/Mistral-7B-v0.1@refs/pr/1");
    assert_eq!(
        (with.repo.as_str(), with.revision.as_deref()),
        ("mistralai/Mistral-7B-v0.1", Some("refs/pr/1"))
    );
    assert_eq!(id("org/name").cache_folder(), "models--org--name");
    for not_an_id in [
        "name",
        "a/b/c",
        "/abs/path",
        "org/",
        "/name",
        "org/name@",
        "org/../x",
        "org/n@a/../b",
        "./x",
    ] {
        assert_eq!(HubId::parse(not_an_id), None, "{not_an_id}");
    }
}

#[test]
fn revisions_resolve_through_refs_or_as_commit_hashes() {
    let cache = cache_with_tiny_model();
    let snapshots = cache.path().join("models--org--tiny/snapshots");
    let resolve = |text: &str| hub::resolve(&id(text), cache.path(), "test");
    assert_eq!(resolve("org/tiny").unwrap().dir, snapshots.join(COMMIT_MAIN));
    assert_eq!(resolve("org/tiny@main").unwrap().commit, COMMIT_MAIN);
    assert_eq!(resolve("org/tiny@v1.0").unwrap().dir, snapshots.join(COMMIT_TAG));
    assert_eq!(resolve(&format!("org/tiny@{COMMIT_TAG}")).unwrap().commit, COMMIT_TAG);

    let error = resolve("org/tiny@nope").unwrap_err().to_string();
    for needle in [
        "org/tiny",
        "refs/nope",
        "huggingface-cli download org/tiny --revision nope",
    ] {
        assert!(error.contains(needle), "lacks {needle}: {error}");
    }
    let unknown_commit = "fedcba9876543210fedcba9876543210fedcba98";
    let error = resolve(&format!("org/tiny@{unknown_commit}")).unwrap_err().to_string();
    assert!(error.contains(&format!("snapshots/{unknown_commit}")), "{error}");
}

#[test]
fn a_model_missing_from_the_cache_says_where_it_looked_and_how_to_download_it() {
    let cache = cache_with_tiny_model();
    let error = hub::resolve(&id("org/absent"), cache.path(), "HF_HUB_CACHE")
        .unwrap_err()
        .to_string();
    let looked = cache.path().join("models--org--absent");
    for needle in [
        looked.to_str().unwrap(),
        "HF_HUB_CACHE",
        "huggingface-cli download org/absent",
        "hf download org/absent",
    ] {
        assert!(error.contains(needle), "lacks {needle}: {error}");
    }
}

#[test]
fn a_snapshot_folder_is_named_by_its_repo_and_hashed_without_reading_lfs_blobs() {
    let cache = cache_with_tiny_model();
    let snapshot = cache.path().join("models--org--tiny/snapshots").join(COMMIT_MAIN);
    let checkpoint = Checkpoint::open(&snapshot).unwrap();
    assert_eq!(checkpoint.name(), "org/tiny");
    assert_eq!(checkpoint.folder_name(), "org--tiny");
    let config_sha = sha256_hex(&std::fs::read(tiny_dir().join("config.json")).unwrap());
    let want = [("config.json", config_sha.as_str()), ("model.safetensors", LFS_NAME)];
    let files = checkpoint.files().unwrap();
    let got: Vec<(&str, &str)> = files.iter().map(|f| (f.name.as_str(), f.sha256.as_str())).collect();
    assert_eq!(got, want);
    // And it loads: the decoder is the tiny model's.
    let loaded = checkpoint.load(&AttentionSpec::default(), &device()).unwrap();
    assert_eq!(
        (loaded.decoder.config.num_layers, loaded.decoder.config.vocab_size),
        (2, 512)
    );
    assert!(loaded.tokenizer.is_none());
}

#[test]
fn local_checkpoints_hash_every_file_and_keep_the_run_identity_hash() {
    let gguf = Checkpoint::open(&smollm2_gguf()).unwrap();
    assert_eq!(gguf.name(), "SmolLM2-135M-Instruct.Q4_1");
    let files = gguf.files().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name, "SmolLM2-135M-Instruct.Q4_1.gguf");
    // The nightly baseline's model_sha256 (results/baselines/nightly-smollm2/identity.json).
    let baseline = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
    assert_eq!(files_sha256(&files), baseline);

    let folder = Checkpoint::open(&tiny_dir()).unwrap();
    assert_eq!(folder.name(), "tiny-llama-gqa");
    let files = folder.files().unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["config.json", "golden.safetensors", "model.safetensors"]);
    for file in &files {
        let bytes = std::fs::read(tiny_dir().join(&file.name)).unwrap();
        assert_eq!(file.sha256, sha256_hex(&bytes), "{}", file.name);
    }
    // Several files: the hash of their hashes in name order, as run identities recorded it.
    let joined: String = files.iter().map(|f| f.sha256.as_str()).collect();
    assert_eq!(files_sha256(&files), sha256_hex(joined.as_bytes()));
    let reversed: Vec<CheckpointFile> = files.iter().rev().cloned().collect();
    assert_eq!(files_sha256(&reversed), files_sha256(&files));
}

#[test]
fn a_folder_without_config_json_says_what_model_expects() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model-Q4_K_M.gguf"), b"GGUF").unwrap();
    let error = Checkpoint::open(dir.path()).err().unwrap().to_string();
    let gguf = dir.path().join("model-Q4_K_M.gguf");
    for needle in [
        dir.path().to_str().unwrap(),
        "no config.json",
        "GGUF file",
        gguf.to_str().unwrap(),
    ] {
        assert!(error.contains(needle), "lacks {needle}: {error}");
    }
}

#[test]
fn devices_and_fifos_are_refused_without_reading_them() {
    let error = Checkpoint::open(Path::new("/dev/zero")).err().unwrap().to_string();
    assert!(
        error.contains("/dev/zero") && error.contains("not a regular file"),
        "{error}"
    );

    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("model.gguf");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    // Opening a FIFO for reading would block until a writer comes: this must return at once.
    let error = Checkpoint::open(&fifo).err().unwrap().to_string();
    assert!(
        error.contains("model.gguf") && error.contains("not a regular file"),
        "{error}"
    );
}

#[test]
fn a_path_that_is_neither_a_file_nor_a_hub_id_is_not_found() {
    let error = Checkpoint::open(Path::new("/nonexistent/model.gguf"))
        .err()
        .unwrap()
        .to_string();
    for needle in ["/nonexistent/model.gguf", "no such file", "org/name"] {
        assert!(error.contains(needle), "lacks {needle}: {error}");
    }
}
