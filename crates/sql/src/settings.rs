//! Which server settings a session may change without a grant.
//!
//! PostgreSQL lets any role change its `user`-context settings; the rest (`superuser` context such as
//! `log_statement` or `session_replication_role`, extension settings, anything unknown) are changed only by
//! a superuser — which the gateway's upstream login often is. So a `SET`, `set_config` or startup parameter
//! of a setting outside [`ORDINARY`] is an object component (kind `setting`, operation `set`) that a grant
//! must allow. `role` and `session_authorization` change the upstream identity and are never allowed.

use crate::analysis::ObjectName;

/// PostgreSQL 15's `user`-context settings (lower-cased), less `local_preload_libraries` (it loads
/// libraries into the backend), plus the names the grammar gives `SET TRANSACTION …` and
/// `SET SESSION CHARACTERISTICS …`. Sorted for binary search.
const ORDINARY: &[&str] = &[
    "application_name",
    "array_nulls",
    "backend_flush_after",
    "backslash_quote",
    "bytea_output",
    "check_function_bodies",
    "client_connection_check_interval",
    "client_encoding",
    "client_min_messages",
    "commit_siblings",
    "constraint_exclusion",
    "cpu_index_tuple_cost",
    "cpu_operator_cost",
    "cpu_tuple_cost",
    "cursor_tuple_fraction",
    "datestyle",
    "debug_pretty_print",
    "debug_print_parse",
    "debug_print_plan",
    "debug_print_rewritten",
    "default_statistics_target",
    "default_table_access_method",
    "default_tablespace",
    "default_text_search_config",
    "default_toast_compression",
    "default_transaction_deferrable",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "effective_cache_size",
    "effective_io_concurrency",
    "enable_async_append",
    "enable_bitmapscan",
    "enable_gathermerge",
    "enable_hashagg",
    "enable_hashjoin",
    "enable_incremental_sort",
    "enable_indexonlyscan",
    "enable_indexscan",
    "enable_material",
    "enable_memoize",
    "enable_mergejoin",
    "enable_nestloop",
    "enable_parallel_append",
    "enable_parallel_hash",
    "enable_partition_pruning",
    "enable_partitionwise_aggregate",
    "enable_partitionwise_join",
    "enable_seqscan",
    "enable_sort",
    "enable_tidscan",
    "escape_string_warning",
    "exit_on_error",
    "extra_float_digits",
    "force_parallel_mode",
    "from_collapse_limit",
    "geqo",
    "geqo_effort",
    "geqo_generations",
    "geqo_pool_size",
    "geqo_seed",
    "geqo_selection_bias",
    "geqo_threshold",
    "gin_fuzzy_search_limit",
    "gin_pending_list_limit",
    "hash_mem_multiplier",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "intervalstyle",
    "jit",
    "jit_above_cost",
    "jit_expressions",
    "jit_inline_above_cost",
    "jit_optimize_above_cost",
    "jit_tuple_deforming",
    "join_collapse_limit",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "lock_timeout",
    "log_parameter_max_length_on_error",
    "logical_decoding_work_mem",
    "maintenance_io_concurrency",
    "maintenance_work_mem",
    "max_parallel_maintenance_workers",
    "max_parallel_workers",
    "max_parallel_workers_per_gather",
    "min_parallel_index_scan_size",
    "min_parallel_table_scan_size",
    "parallel_leader_participation",
    "parallel_setup_cost",
    "parallel_tuple_cost",
    "password_encryption",
    "plan_cache_mode",
    "quote_all_identifiers",
    "random_page_cost",
    "recursive_worktable_factor",
    "restrict_nonsystem_relation_kind",
    "row_security",
    "search_path",
    "seq_page_cost",
    "session characteristics",
    "standard_conforming_strings",
    "statement_timeout",
    "stats_fetch_consistency",
    "synchronize_seqscans",
    "synchronous_commit",
    "tcp_keepalives_count",
    "tcp_keepalives_idle",
    "tcp_keepalives_interval",
    "tcp_user_timeout",
    "temp_buffers",
    "temp_tablespaces",
    "timezone",
    "timezone_abbreviations",
    "trace_notify",
    "trace_sort",
    "transaction",
    "transaction snapshot",
    "transaction_deferrable",
    "transaction_isolation",
    "transaction_read_only",
    "transform_null_equals",
    "vacuum_cost_delay",
    "vacuum_cost_limit",
    "vacuum_cost_page_dirty",
    "vacuum_cost_page_hit",
    "vacuum_cost_page_miss",
    "vacuum_failsafe_age",
    "vacuum_freeze_min_age",
    "vacuum_freeze_table_age",
    "vacuum_multixact_failsafe_age",
    "vacuum_multixact_freeze_min_age",
    "vacuum_multixact_freeze_table_age",
    "wal_sender_timeout",
    "wal_skip_threshold",
    "work_mem",
    "xmlbinary",
    "xmloption",
];

/// How the gateway treats a change of one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingClass {
    /// Any role may change it for its session: no grant needed.
    Ordinary,
    /// `role` / `session_authorization`: the upstream identity; never allowed.
    Identity,
    /// Needs a grant of `set` on the setting.
    Privileged,
}

/// The class of the setting `name` (any case, as PostgreSQL compares setting names).
pub fn setting_class(name: &str) -> SettingClass {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "role" | "session_authorization" => SettingClass::Identity,
        crate::statements::JUSTIFICATION_SETTING => SettingClass::Ordinary,
        other if ORDINARY.binary_search(&other).is_ok() => SettingClass::Ordinary,
        _ => SettingClass::Privileged,
    }
}

/// The object a setting component names: a dotted (extension or placeholder) setting `app.tenant` with
/// its prefix as the schema, so that `app.*` selects it; others unqualified.
pub fn setting_object(name: &str) -> ObjectName {
    let lower = name.to_ascii_lowercase();
    match lower.split_once('.') {
        Some((prefix, rest)) => ObjectName::qualified(prefix, rest),
        None => ObjectName::unqualified(lower),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_is_sorted_for_binary_search() {
        assert!(ORDINARY.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn classes() {
        assert_eq!(setting_class("work_mem"), SettingClass::Ordinary);
        assert_eq!(setting_class("DateStyle"), SettingClass::Ordinary);
        assert_eq!(
            setting_class("portcullis.justification"),
            SettingClass::Ordinary
        );
        assert_eq!(setting_class("ROLE"), SettingClass::Identity);
        for privileged in [
            "log_statement",
            "session_replication_role",
            "local_preload_libraries",
            "session_preload_libraries",
            "pgaudit.log",
            "app.tenant",
            "no_such_setting",
        ] {
            assert_eq!(
                setting_class(privileged),
                SettingClass::Privileged,
                "{privileged}"
            );
        }
        assert_eq!(
            setting_object("App.Tenant"),
            ObjectName::qualified("app", "tenant")
        );
        assert_eq!(
            setting_object("log_statement"),
            ObjectName::unqualified("log_statement")
        );
    }
}
