//! Data protection rules: masks, row filters and column denies (ARCHITECTURE §5, `MASKING.md`).
//!
//! The policy decides *what* is protected for a session; the statement rewriter in `portcullis_sql`
//! applies it. [`CompiledPolicy::protections`](crate::CompiledPolicy::protections) picks the rules that
//! apply to a session ([`SessionProtections`]); [`SessionProtections::protection_for`] turns them into the
//! rewriter's [`RelationProtection`](portcullis_sql::mask::RelationProtection) for one relation.

mod index;
mod load;
mod model;
mod predicate;
mod session;

pub use model::{
    ColumnDenyRule, Conditions, Exemption, MaskRule, Predicate, RowFilterRule, SessionVariable,
};
pub(crate) use session::ProtectionRules;
pub use session::{Applicability, ProtectionKind, ProtectionStatus, SessionProtections};

#[cfg(test)]
mod tests;
