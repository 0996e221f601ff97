//! The README's dependency snippet stays true: every crate it names is at the version this
//! crate depends on (or, for this crate, its own version). Its code is a doctest (src/lib.rs).

use std::path::Path;

/// `name = "v"` or `name = { version = "v", … }` → (name, v).
fn dependency(line: &str) -> Option<(String, String)> {
    let (name, rest) = line.split_once('=')?;
    let rest = rest.trim();
    let version = if let Some(table) = rest.strip_prefix('{') {
        let after = table.split("version").nth(1)?;
        after.split('"').nth(1)?
    } else {
        rest.trim_matches('"')
    };
    Some((name.trim().to_owned(), version.to_owned()))
}

#[test]
fn the_readme_dependency_snippet_matches_the_manifest() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let snippet = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("the README has a toml snippet");
    let ours: Vec<(String, String)> = manifest.lines().filter_map(dependency).collect();
    let mut checked = 0;
    for (name, version) in snippet.lines().filter_map(dependency) {
        if name == "[dependencies]" {
            continue;
        }
        if name == env!("CARGO_PKG_NAME") {
            assert!(
                env!("CARGO_PKG_VERSION").starts_with(&format!("{version}.")),
                "README says {name} = {version}, the crate is {}",
                env!("CARGO_PKG_VERSION")
            );
        } else {
            let manifest_version = ours
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("README names {name}, which Cargo.toml does not"));
            assert_eq!(version, manifest_version, "README's {name}");
        }
        checked += 1;
    }
    assert!(
        checked >= 4,
        "only {checked} dependencies found in {snippet}"
    );
}
