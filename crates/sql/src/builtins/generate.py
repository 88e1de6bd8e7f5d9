#!/usr/bin/env python3
"""Writes functions.rs and relations.rs from a live PostgreSQL's catalog.

    python3 crates/sql/src/builtins/generate.py "host=127.0.0.1 user=postgres dbname=postgres"

Every function and relation of `pg_catalog` and `information_schema` gets a class. Functions whose every
overload is immutable are `Pure`; the rest were reviewed one by one and are listed below by the rule that
classes them. A name nobody classified stays out of the tables, and the gateway treats it as privileged;
the test `builtins_are_classified` (crates/sql/tests/builtins_live.rs) fails on a server that has one, so
run this again on a new PostgreSQL release and review what it prints as unreviewed.
"""
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

# Functions that run SQL given to them as text (or read a relation named in a text argument).
RUNS_SQL = {
    "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml",
    "cursor_to_xmlschema", "table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema",
    "schema_to_xml", "schema_to_xmlschema", "schema_to_xml_and_xmlschema", "database_to_xml",
    "database_to_xmlschema", "database_to_xml_and_xmlschema", "ts_stat",
}
# Names whose overloads differ: classed by the harmless ones here; the analyser refuses the others by
# argument count (`unanalysable_overload` in mod.rs). `ts_rewrite(query, target, substitute)` is pure,
# `ts_rewrite(query, 'SELECT ...')` runs its second argument as SQL.
BY_ARITY = {"ts_rewrite": "Pure"}
# Functions that read, list or write the database server's files.
SERVER_FILES = {
    "pg_read_file", "pg_read_file_old", "pg_read_binary_file", "pg_stat_file", "pg_ls_dir",
    "pg_ls_logdir", "pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_ls_logicalsnapdir",
    "pg_ls_logicalmapdir", "pg_ls_replslotdir", "pg_current_logfile", "lo_import", "lo_export",
}
# Effects outside the statement, or reads of other sessions, other transactions or the server's state.
PRIVILEGED_PREFIXES = (
    "RI_FKey_", "binary_upgrade_", "lo_", "pg_advisory_", "pg_try_advisory_", "pg_replication_origin_",
    "pg_logical_", "pg_stat_get_", "pg_stat_reset", "pg_wal_replay_", "pg_control_", "pg_backup_",
    "pg_rotate_logfile", "pg_xact_commit_timestamp", "brin_summarize", "dsnowball_", "plpgsql_",
    "fmgr_", "pg_last_wal_", "pg_current_wal_",
)
PRIVILEGED = {
    "loread", "lowrite", "nextval", "setval", "pg_sequence_last_value", "pg_cancel_backend",
    "pg_terminate_backend", "pg_create_logical_replication_slot", "pg_create_physical_replication_slot",
    "pg_copy_logical_replication_slot", "pg_copy_physical_replication_slot", "pg_drop_replication_slot",
    "pg_replication_slot_advance", "pg_get_replication_slots", "pg_switch_wal", "pg_create_restore_point",
    "pg_promote", "pg_reload_conf", "pg_stat_clear_snapshot", "pg_stat_force_next_flush",
    "pg_stat_have_stats", "pg_log_backend_memory_contexts", "pg_get_backend_memory_contexts",
    "pg_get_shmem_allocations", "pg_notify", "pg_import_system_collations", "pg_export_snapshot",
    "pg_nextoid", "pg_stop_making_pinned_objects", "pg_extension_config_dump", "pg_prepared_xact",
    "pg_lock_status", "pg_blocking_pids", "pg_safe_snapshot_blocking_pids",
    "pg_isolation_test_session_is_blocked", "pg_hba_file_rules", "pg_ident_file_mappings",
    "pg_show_all_file_settings", "pg_show_all_settings", "pg_show_replication_origin_status",
    "pg_config", "pg_get_multixact_members", "pg_last_committed_xact", "pg_xact_status", "txid_status",
    "pg_last_xact_replay_timestamp", "pg_get_wal_replay_pause_state", "pg_is_wal_replay_paused",
    "pg_get_wal_resource_managers", "pg_mcv_list_items", "brin_desummarize_range",
    "gin_clean_pending_list", "amvalidate", "bernoulli", "system", "suppress_redundant_updates_trigger",
    "tsvector_update_trigger", "tsvector_update_trigger_column", "unique_key_recheck",
    "bthandler", "hashhandler", "gisthandler", "ginhandler", "spghandler", "brinhandler",
    "heap_tableam_handler", "pg_relation_filenode", "pg_relation_filepath", "pg_filenode_relation",
}
# Stable or volatile, reviewed: they read only their arguments, the catalog and the session's own state.
READS_VOLATILE = {
    "clock_timestamp", "timeofday", "random", "setseed", "gen_random_uuid", "current_query", "currval",
    "lastval", "pg_sleep", "pg_sleep_for", "pg_sleep_until", "set_config", "pg_is_in_recovery",
    "pg_jit_available", "pg_database_size", "pg_tablespace_size", "pg_relation_size", "pg_table_size",
    "pg_indexes_size", "pg_total_relation_size", "pg_collation_actual_version",
    "pg_database_collation_actual_version", "pg_partition_ancestors", "pg_partition_tree",
    "pg_notification_queue_usage", "currtid2",
}

def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

def query(conninfo, sql):
    out = subprocess.run(["psql", conninfo, "-XAt", "-F", "\t", "-c", sql], check=True,
                         capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]

def function_class(name, volatility):
    if name in BY_ARITY:
        return BY_ARITY[name]
    if name in RUNS_SQL:
        return "RunsSql"
    if name in SERVER_FILES:
        return "ServerFiles"
    if name in PRIVILEGED or name.startswith(PRIVILEGED_PREFIXES):
        return "Privileged"
    if set(volatility) == {"i"}:
        return "Pure"
    if "v" not in volatility or name in READS_VOLATILE:
        return "Reads"
    return None

def main():
    conninfo = sys.argv[1] if len(sys.argv) > 1 else "dbname=postgres"
    version = query(conninfo, "SHOW server_version")[0][0]
    rows = query(conninfo, """SELECT n.nspname, p.proname, string_agg(DISTINCT p.provolatile::text, '')
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname IN ('pg_catalog', 'information_schema') GROUP BY 1, 2 ORDER BY 1, 2""")
    unreviewed = []
    lines = []
    for schema, name, volatility in rows:
        cls = "Reads" if schema == "information_schema" else function_class(name, volatility)
        if cls is None:
            unreviewed.append(name)
            continue
        lines.append(f"    ({rust_str(schema)}, {rust_str(name)}, FunctionClass::{cls}),")
    lines.sort(key=lambda l: re.findall(r'"((?:[^"\\]|\\.)*)"', l)[:2])
    write(HERE / "functions.rs", version, "FUNCTIONS", "(&str, &str, FunctionClass)",
          "The functions of `pg_catalog` and `information_schema` and their class, sorted by schema and name.",
          "use super::FunctionClass;", lines)
    rels = query(conninfo, """SELECT n.nspname, c.relname,
        pg_catalog.has_table_privilege('public', c.oid, 'SELECT') FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('pg_catalog', 'information_schema') AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
        ORDER BY 1, 2""")
    lines = []
    for schema, name, public in rels:
        cls = "Public" if public == "t" and not revealing(schema, name) else "Privileged"
        lines.append(f"    ({rust_str(schema)}, {rust_str(name)}, RelationClass::{cls}),")
    lines.sort(key=lambda l: re.findall(r'"((?:[^"\\]|\\.)*)"', l)[:2])
    write(HERE / "relations.rs", version, "RELATIONS", "(&str, &str, RelationClass)",
          "The relations of `pg_catalog` and `information_schema` and their class, sorted by schema and name.",
          "use super::RelationClass;", lines)
    if unreviewed:
        print("unreviewed (left out, so privileged):", " ".join(unreviewed))

# Relations every role may read that still show other sessions' statements, the server's state, data
# values (statistics) or, to the gateway's often superuser upstream login, secrets (user mapping options).
REVEALING = {
    "pg_stat_activity", "pg_stat_replication", "pg_stat_wal_receiver", "pg_stat_ssl", "pg_stat_gssapi",
    "pg_stat_subscription", "pg_locks", "pg_prepared_xacts", "pg_replication_slots", "pg_settings",
    "pg_stats", "pg_stats_ext", "pg_stats_ext_exprs", "pg_user_mappings", "user_mapping_options",
    "user_mappings",
}

def revealing(schema, name):
    return name in REVEALING or name.startswith("pg_stat_progress_")

def write(path, version, const, ty, doc, use, lines):
    path.write_text(
        f"// @generated by generate.py from PostgreSQL {version}'s catalog; review before committing.\n"
        f"{use}\n\n/// {doc}\n#[rustfmt::skip]\npub(super) const {const}: &[{ty}] = &[\n"
        + "\n".join(lines) + "\n];\n")

if __name__ == "__main__":
    main()
