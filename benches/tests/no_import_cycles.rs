//! No file of a workspace crate imports a file that imports it back, directly or
//! around a circle (the dependency rule of `ARCHITECTURE.md`, inside each crate).

use dex_benches::imports::ImportGraph;

#[test]
fn no_crate_has_an_import_cycle() -> anyhow::Result<()> {
    let dirs = dex_benches::crate_dirs()?;
    assert!(
        dirs.iter().any(|d| d.ends_with("dex-core")),
        "the crates were not found beside benches/: {dirs:?}"
    );
    let mut report = Vec::new();
    for dir in &dirs {
        for cycle in ImportGraph::of_crate(dir)?.cycles() {
            let names: Vec<String> = cycle.iter().map(|p| p.display().to_string()).collect();
            report.push(format!("{}: {}", dir.display(), names.join(" -> ")));
        }
    }
    assert!(report.is_empty(), "import cycles:\n{}", report.join("\n"));
    Ok(())
}
