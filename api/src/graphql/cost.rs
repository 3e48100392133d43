//! The cost model: a field costs the rows it can return, times what each row's
//! selection costs, so nested lists multiply and a document's cost bounds the work it
//! can cause before any of it is done (the engine sums these costs and refuses a
//! document over `MAX_QUERY_COMPLEXITY` before execution).
//!
//! Connections cost `first ×` their selection (`pagination::page_cost`). Every other
//! list is costed by [`list`] with one of the bounds below: the most rows it can hold
//! in the data the hub serves. A bound that is too small lets a document do more work
//! than its cost says, which is how `{ regions { localAuthorities { region {
//! localAuthorities … } } } }` once took the hub down: the lists were not costed at
//! all, so the cycle added instead of multiplied. `every_list_field_has_a_cost` below
//! fails for a list field added without a cost.
//!
//! Lists of scalars and enums (`roles`, `priorities`) cost their row's unit: their
//! values are bounded by the row they belong to.

/// England's regions (nine; a margin for a test or future seed).
pub const REGIONS: usize = 12;
/// Local authorities in the largest region (London has 33).
pub const LAS_PER_REGION: usize = 40;
/// Indicators in the catalogue, and signal rules (one or two per indicator).
pub const INDICATORS: usize = 60;
/// Scopes one caller holds: its own, plus one per sharing agreement in force.
pub const SCOPES: usize = 100;
/// Organisations a record names (self-evaluation partners, peer-review
/// participants, buddy pairings of one school, schools of a support request, offers
/// matched to one request).
pub const MEMBERS: usize = 20;
/// Rows of one record's own lists (sections, review actions).
pub const PARTS: usize = 50;
/// Points of one series and figures behind one signal or gap: periods × groups.
pub const SERIES_POINTS: usize = 20;
/// Cells of one aggregate: the hub's areas of one level × pupil groups × periods is
/// bounded by the aggregate's own cost (`100 + 10 ×` its selection) multiplied here.
pub const AGGREGATE_CELLS: usize = 200;

/// The cost of a list of at most `rows` rows, each costing `child_complexity`.
pub fn list(rows: usize, child_complexity: usize) -> usize {
    rows.saturating_mul(child_complexity.max(1))
        .saturating_add(1)
}

#[cfg(test)]
mod tests {
    use async_graphql::OutputType;
    use async_graphql::registry::{MetaType, Registry};

    use super::super::{Mutation, Query};

    /// Every field whose type is a list of objects has a cost function (connections'
    /// `edges` and `nodes` are costed by the connection field's `first`).
    #[test]
    fn every_list_field_has_a_cost() {
        let mut registry = Registry::default();
        Query::create_type_info(&mut registry);
        Mutation::create_type_info(&mut registry);
        let mut missing = Vec::new();
        for (name, ty) in &registry.types {
            if name.starts_with("__") || name.ends_with("Connection") {
                continue;
            }
            let MetaType::Object { fields, .. } = ty else {
                continue;
            };
            for (field, meta) in fields {
                if !meta.ty.contains('[') || meta.compute_complexity.is_some() {
                    continue;
                }
                let inner = meta.ty.trim_matches(|c| matches!(c, '[' | ']' | '!'));
                let leaf = matches!(
                    registry.types.get(inner),
                    Some(MetaType::Scalar { .. } | MetaType::Enum { .. })
                );
                if !leaf {
                    missing.push(format!("{name}.{field}: {}", meta.ty));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "lists without a cost:\n{}",
            missing.join("\n")
        );
    }
}
