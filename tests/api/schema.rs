//! `schema.graphql` is the exported SDL; this fails when the code and the file drift.

#[test]
fn schema_graphql_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema.graphql");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    let from_code = baseline_hub::graphql::sdl();
    assert!(
        on_disk == from_code,
        "schema.graphql is out of date; regenerate it with\n  cargo run -- export-schema --output schema.graphql"
    );
}
