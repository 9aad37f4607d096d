//! Embeds the built-in task definitions (`defs/**`) in the crate, so an installed binary needs
//! no source tree: writes `$OUT_DIR/builtin_defs.rs` with one `(path, text)` per file.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("defs");
    println!("cargo:rerun-if-changed=defs");
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut code = String::from(
        "/// Built-in task files: (path under `defs/`, text).\npub(crate) const BUILTIN: &[(&str, &str)] = &[\n",
    );
    for path in &all {
        let rel = path
            .strip_prefix(&root)
            .expect("under defs")
            .to_string_lossy()
            .replace('\\', "/");
        code.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("builtin_defs.rs");
    std::fs::write(&out, code).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
