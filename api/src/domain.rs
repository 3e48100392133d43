//! The hub's vocabulary: the enumerations that the database stores as UPPER_CASE text
//! and the GraphQL schema exposes as enums.
//!
//! Keeping them in one module means the seed generator, the resolvers, the policy and
//! (later) the sync path all spell a phase or a pupil group the same way, and a typo is
//! a compile error rather than an empty result.

use async_graphql::Enum;

/// Declares a GraphQL enum whose variants are stored in the database as their
/// UPPER_CASE names, with lossless conversion both ways.
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* #[graphql(name = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the stored text; `None` for anything else.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        /// Serialised as the stored text (digests of sync payloads use it).
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Partnership vocabulary (`partnership`, `signals`) is declared with the same macro.
pub(crate) use stored_enum;

stored_enum! {
    /// What kind of partner an organisation is. Drives the access policy.
    OrganisationKind {
        LocalAuthority => "LOCAL_AUTHORITY",
        Trust => "TRUST",
        RscOffice => "RSC_OFFICE",
        Inspectorate => "INSPECTORATE",
        Diocese => "DIOCESE",
        School => "SCHOOL",
        /// The organisation that runs the hub.
        Hub => "HUB",
        Other => "OTHER",
    }
}

stored_enum! {
    /// School phase, as on the register.
    Phase {
        Primary => "PRIMARY",
        Secondary => "SECONDARY",
        AllThrough => "ALL_THROUGH",
        Special => "SPECIAL",
        AlternativeProvision => "ALTERNATIVE_PROVISION",
    }
}

stored_enum! {
    /// Establishment type, as on the register.
    EstablishmentType {
        Community => "COMMUNITY",
        VoluntaryAided => "VOLUNTARY_AIDED",
        VoluntaryControlled => "VOLUNTARY_CONTROLLED",
        Foundation => "FOUNDATION",
        AcademyConverter => "ACADEMY_CONVERTER",
        AcademySponsorLed => "ACADEMY_SPONSOR_LED",
        FreeSchool => "FREE_SCHOOL",
        CommunitySpecial => "COMMUNITY_SPECIAL",
        AcademySpecial => "ACADEMY_SPECIAL",
        PupilReferralUnit => "PUPIL_REFERRAL_UNIT",
        AcademyAlternativeProvision => "ACADEMY_ALTERNATIVE_PROVISION",
    }
}

stored_enum! {
    /// The geography a figure describes.
    GeographicLevel {
        School => "SCHOOL",
        La => "LA",
        Region => "REGION",
        National => "NATIONAL",
    }
}

stored_enum! {
    /// The pupils a figure covers. `DISADVANTAGED` and `NOT_DISADVANTAGED` partition
    /// `ALL`; the others are subsets of it.
    PupilGroup {
        All => "ALL",
        Disadvantaged => "DISADVANTAGED",
        NotDisadvantaged => "NOT_DISADVANTAGED",
        SenSupport => "SEN_SUPPORT",
        Ehcp => "EHCP",
        ChildrenInCare => "CHILDREN_IN_CARE",
    }
}

stored_enum! {
    /// A pupil's special educational needs status.
    SenStatus {
        None => "NONE",
        SenSupport => "SEN_SUPPORT",
        Ehcp => "EHCP",
    }
}

stored_enum! {
    /// How an indicator's value is expressed.
    Unit {
        Percent => "PERCENT",
        RatePer100 => "RATE_PER_100",
        Count => "COUNT",
        Score => "SCORE",
    }
}

stored_enum! {
    /// Whether a higher value is better, worse, or context only.
    Polarity {
        HigherIsBetter => "HIGHER_IS_BETTER",
        LowerIsBetter => "LOWER_IS_BETTER",
        Neutral => "NEUTRAL",
    }
}

stored_enum! {
    /// Roles a token may carry (see the access table in DESIGN.md).
    Role {
        HubAdmin => "HUB_ADMIN",
        LaOfficer => "LA_OFFICER",
        TrustOfficer => "TRUST_OFFICER",
        RscOfficer => "RSC_OFFICER",
        Inspector => "INSPECTOR",
        SchoolLeader => "SCHOOL_LEADER",
        Analyst => "ANALYST",
        SyncAgent => "SYNC_AGENT",
    }
}

stored_enum! {
    /// How close to individual pupils a reader may get (DESIGN.md, Access).
    AccessLevel {
        /// Record level: one row per pupil.
        Pupil => "PUPIL",
        /// Unsuppressed figures per school.
        School => "SCHOOL",
        /// Figures over groups of schools, under disclosure control.
        Aggregate => "AGGREGATE",
    }
}

stored_enum! {
    /// What an audited request did with the data it touched.
    AuditAction {
        Read => "READ",
        Write => "WRITE",
    }
}

/// The ONS code used as the area code of `NATIONAL` figures (England).
pub const ENGLAND_CODE: &str = "E92000001";

/// The academic years the demo data covers, oldest first.
pub const PERIODS: &[&str] = &["2021/22", "2022/23", "2023/24", "2024/25", "2025/26"];

/// Checks the `YYYY/YY` shape of an academic year, e.g. `2023/24`.
pub fn is_valid_period(period: &str) -> bool {
    let bytes = period.as_bytes();
    // Digits only: `parse` would also take a sign (`+023/24`), a second spelling of a
    // key that figures are stored and compared under.
    if bytes.len() != 7
        || bytes[4] != b'/'
        || !bytes[..4].iter().chain(&bytes[5..]).all(u8::is_ascii_digit)
    {
        return false;
    }
    let (Ok(start), Ok(end)) = (period[..4].parse::<u32>(), period[5..].parse::<u32>()) else {
        return false;
    };
    (start + 1) % 100 == end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_round_trips() {
        for group in PupilGroup::ALL {
            assert_eq!(PupilGroup::parse(group.as_str()), Some(*group));
        }
        assert_eq!(Phase::parse("primary"), None);
    }

    #[test]
    fn periods_are_academic_years() {
        assert!(PERIODS.iter().all(|p| is_valid_period(p)));
        assert!(is_valid_period("1999/00"));
        assert!(!is_valid_period("2023/25"));
        assert!(!is_valid_period("2023-24"));
        assert!(!is_valid_period("23/24"));
    }
}
