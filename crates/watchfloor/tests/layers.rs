//! The files of a crate import each other in layers, never in a circle: the storage files
//! (a lower `base.rs` that the others share), and the API's router, UI and XSOAR face (which
//! take their rules from the service, not from each other).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, with the top-level module it belongs to.
fn files(src: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap();
                let first = rel.components().next().unwrap().as_os_str();
                let module = Path::new(first)
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((module, path));
            }
        }
    }
    out
}

/// Which top-level modules of the crate at `src` each module names (`crate::other`).
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let all = files(src);
    let modules: BTreeSet<String> = all
        .iter()
        .map(|(m, _)| m.clone())
        .filter(|m| m != "lib")
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path) in &all {
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        let used = edges.entry(module.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let name: String = text[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&name) && name != *module {
                used.insert(name);
            }
        }
        // `use crate::{a::X, b::Y}`: the modules inside a grouped import.
        for (i, _) in text.match_indices("use crate::{") {
            let group = &text[i..text[i..].find("};").map_or(text.len(), |j| i + j)];
            for word in group.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
                let name = word.split("::").next().unwrap_or_default();
                if word.contains("::") && modules.contains(name) && name != module {
                    used.insert(name.to_string());
                }
            }
        }
    }
    edges
}

/// A circle of imports, if there is one.
fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

fn src_of(krate: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("src")
}

#[test]
fn the_storage_files_import_each_other_in_layers() {
    let edges = graph(&src_of("storage"));
    assert!(edges["sql"].contains("base"), "{edges:?}");
    assert_eq!(circle(&edges), None, "{edges:?}");
}

#[test]
fn the_router_the_ui_and_xsoars_face_do_not_import_each_other() {
    let edges = graph(&src_of("api"));
    assert!(edges["routes"].contains("ui"), "{edges:?}");
    assert_eq!(circle(&edges), None, "{edges:?}");
    for face in ["ui", "xsoar"] {
        assert!(
            !edges[face].contains("routes"),
            "{face} imports the router: {edges:?}"
        );
    }
}

/// The check finds a circle where there is one.
#[test]
fn a_circle_is_found() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        circle(&edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
