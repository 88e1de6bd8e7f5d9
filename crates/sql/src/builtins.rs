//! Built-in functions whose effect the analyser cannot attribute to objects: they run SQL handed to them
//! as text, or reach the database server's files and programs. A call to one makes the statement opaque.

/// Why a call of the built-in `name` (unqualified or in `pg_catalog`) cannot be analysed, if it cannot.
pub fn unanalysable(name: &str) -> Option<&'static str> {
    if RUNS_SQL_TEXT.contains(&name) || name.starts_with("dblink") {
        Some("runs SQL given as text, which the gateway cannot analyse")
    } else if SERVER_FILES.contains(&name) {
        Some("reaches the database server's files")
    } else {
        None
    }
}

/// Functions that execute a query (or read a relation) named in a text argument.
const RUNS_SQL_TEXT: &[&str] = &[
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "table_to_xml",
    "table_to_xmlschema",
    "table_to_xml_and_xmlschema",
    "schema_to_xml",
    "schema_to_xmlschema",
    "schema_to_xml_and_xmlschema",
    "database_to_xml",
    "database_to_xmlschema",
    "database_to_xml_and_xmlschema",
    "ts_stat",
    "ts_rewrite",
];

/// Functions that read, list or write files on the database server.
const SERVER_FILES: &[&str] = &[
    "pg_read_file",
    "pg_read_binary_file",
    "pg_stat_file",
    "pg_ls_dir",
    "pg_ls_logdir",
    "pg_ls_waldir",
    "pg_ls_tmpdir",
    "pg_ls_archive_statusdir",
    "pg_ls_logicalsnapdir",
    "pg_ls_logicalmapdir",
    "pg_ls_replslotdir",
    "pg_current_logfile",
    "lo_import",
    "lo_export",
    "pg_file_write",
    "pg_file_rename",
    "pg_file_unlink",
    "pg_file_sync",
    "pg_logdir_ls",
];

#[cfg(test)]
mod tests {
    use super::unanalysable;

    #[test]
    fn flags_dynamic_sql_and_file_access_only() {
        assert!(unanalysable("query_to_xml").is_some());
        assert!(unanalysable("dblink_exec").is_some());
        assert!(unanalysable("pg_read_file").is_some());
        assert!(unanalysable("lower").is_none());
    }
}
