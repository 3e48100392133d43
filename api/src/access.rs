//! The access policy: the one place that decides what a caller may see.
//!
//! Every resolver asks here before it reads anything beyond public reference data, so
//! the rules can be read, reviewed and tested in one file. The foundation draws a
//! single line, from DESIGN.md: anonymous callers see public reference data only
//! (regions, organisations, schools' register fields, the indicator catalogue);
//! figures need an authenticated caller. The role table, the SCHOOL/PUPIL/AGGREGATE
//! levels, sharing agreements and disclosure control replace [`require_figures`] with
//! per-level scopes (see the access-control issue); resolvers already call it at
//! exactly the points where those checks belong.

use crate::auth::{Caller, Principal};
use crate::error::Error;

/// Public reference data: always allowed, even without a token. Exists so that every
/// resolver states its access decision, including the ones that allow everybody.
pub fn public(_caller: &Caller) -> Result<(), Error> {
    Ok(())
}

/// Figures (observations, time series, gaps): an authenticated caller is required.
pub fn require_figures(caller: &Caller) -> Result<&Principal, Error> {
    caller.principal().ok_or(Error::Unauthenticated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_callers_get_no_figures() {
        assert!(matches!(
            require_figures(&Caller::Anonymous),
            Err(Error::Unauthenticated)
        ));
        assert!(public(&Caller::Anonymous).is_ok());
    }
}
