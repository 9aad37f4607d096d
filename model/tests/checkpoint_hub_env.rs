//! `--model org/name` through the environment: where the cache is looked for
//! (HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME, HOME) and a local path winning over a hub id.
//! Environment and working directory are process-wide, so this binary holds one test that
//! changes them step by step.

mod common;

use std::path::Path;

use common::fixtures;
use model::Checkpoint;
use model::load::hub::cache_dir;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// A cache at `cache` holding the tiny model as `org/tiny` (plain copies, not blob links: the
/// snapshot files of a cache on a filesystem without symlinks).
fn put_tiny_model(cache: &Path) {
    let repo = cache.join("models--org--tiny");
    let snapshot = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    let tiny = fixtures().join("tiny/tiny-llama-gqa");
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(tiny.join(file), snapshot.join(file)).unwrap();
    }
}

fn set(vars: &[(&str, Option<&Path>)]) {
    for (name, value) in vars {
        // SAFETY: this test binary has one test, so no other thread reads the environment.
        unsafe {
            match value {
                Some(value) => std::env::set_var(name, value),
                None => std::env::remove_var(name),
            }
        }
    }
}

#[test]
fn hub_ids_resolve_from_the_cache_the_environment_names() {
    let root = tempfile::tempdir().unwrap();
    let (hub_cache, hf_home, xdg, home) = (
        root.path().join("hub-cache"),
        root.path().join("hf-home"),
        root.path().join("xdg"),
        root.path().join("home"),
    );
    set(&[
        ("HF_HUB_CACHE", Some(&hub_cache)),
        ("HF_HOME", Some(&hf_home)),
        ("XDG_CACHE_HOME", Some(&xdg)),
        ("HOME", Some(&home)),
    ]);
    assert_eq!(cache_dir(), (hub_cache.clone(), "HF_HUB_CACHE".to_string()));
    set(&[("HF_HUB_CACHE", None)]);
    assert_eq!(cache_dir().0, hf_home.join("hub"));
    set(&[("HF_HOME", None)]);
    assert_eq!(cache_dir().0, xdg.join("huggingface/hub"));
    set(&[("XDG_CACHE_HOME", None)]);
    assert_eq!(cache_dir().0, home.join(".cache/huggingface/hub"));

    // Not in the default cache yet: the error says where it looked and how to download it.
    let error = Checkpoint::open(Path::new("org/tiny")).err().unwrap().to_string();
    let looked = home.join(".cache/huggingface/hub/models--org--tiny");
    for needle in [
        "org/tiny: no such file or folder",
        looked.to_str().unwrap(),
        "~/.cache/huggingface/hub",
        "huggingface-cli download org/tiny",
    ] {
        assert!(error.contains(needle), "lacks {needle}: {error}");
    }

    put_tiny_model(&home.join(".cache/huggingface/hub"));
    let checkpoint = Checkpoint::open(Path::new("org/tiny")).unwrap();
    assert_eq!(checkpoint.name(), "org/tiny");
    let snapshot = home
        .join(".cache/huggingface/hub/models--org--tiny/snapshots")
        .join(COMMIT);
    assert_eq!(checkpoint.location(), snapshot);
    // Plain copies are not LFS links, so they are hashed.
    assert_eq!(checkpoint.files().unwrap().len(), 2);

    put_tiny_model(&hub_cache);
    set(&[("HF_HUB_CACHE", Some(&hub_cache))]);
    let checkpoint = Checkpoint::open(Path::new("org/tiny@main")).unwrap();
    assert!(
        checkpoint.location().starts_with(&hub_cache),
        "{:?}",
        checkpoint.location()
    );

    // A local folder called org/tiny wins over the hub id.
    let work = root.path().join("work");
    std::fs::create_dir_all(work.join("org/tiny")).unwrap();
    let tiny = fixtures().join("tiny/tiny-llama-gqa");
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(tiny.join(file), work.join("org/tiny").join(file)).unwrap();
    }
    std::env::set_current_dir(&work).unwrap();
    let local = Checkpoint::open(Path::new("org/tiny")).unwrap();
    assert_eq!(local.location(), Path::new("org/tiny"));
    assert_eq!(local.name(), "tiny");
}
