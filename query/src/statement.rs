//! What kind of statement a request holds, from DuckDB's own parser and
//! binder ([`crate::worker_db::WorkerDb::classify`]), and what the server
//! allows of each kind: everything that would change the server's session
//! or catalog state beyond the request (ATTACH, DETACH, USE, SET, RESET,
//! LOAD, INSTALL, EXPORT, ...) is refused, naming the statement.

use duckdb::ffi;

use crate::error::{QueryError, QueryResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Reads only (SELECT, EXPLAIN, PRAGMA that shows something, CALL).
    Read,
    /// Changes rows (INSERT, UPDATE, DELETE, MERGE).
    Dml,
    /// Changes the schema (CREATE, DROP, ALTER, macros).
    Ddl,
    /// `CHECKPOINT` / `FORCE CHECKPOINT`: seal a snapshot now.
    Checkpoint,
    Begin,
    Commit,
    Rollback,
    /// Refused: the statement's name for the error message.
    Refused(&'static str),
    /// The binder could not prepare it on its own (e.g. it names a table
    /// created earlier in the same transaction): run it, and assume it may
    /// have changed the schema.
    Unknown,
}

impl Kind {
    /// May change the database.
    pub fn is_write(self) -> bool {
        !matches!(self, Kind::Read | Kind::Begin | Kind::Commit | Kind::Rollback | Kind::Refused(_))
    }

    /// May change the catalog (tables, columns, schemas): clients must
    /// reload cached catalog data.
    pub fn may_change_catalog(self) -> bool {
        matches!(self, Kind::Ddl | Kind::Unknown)
    }

    /// Refuse what no request may do.
    pub fn check_allowed(self) -> QueryResult<Self> {
        match self {
            Kind::Refused(what) => Err(QueryError::Sandbox(format!(
                "{what} statements are not allowed: they would change the server's state for other requests \
                 (settings, attached databases, extensions); the server's configuration is fixed by whoever runs it"
            ))),
            k => Ok(k),
        }
    }
}

/// After this statement its connection can serve other requests: it read
/// or changed rows, and left no state behind (no temp objects, settings,
/// prepared statements; those come with other kinds or keywords).
pub fn leaves_connection_clean(kind: Kind, sql: &str) -> bool {
    matches!(kind, Kind::Read | Kind::Dml)
        && matches!(
            first_keyword(sql).as_str(),
            "SELECT" | "WITH" | "FROM" | "VALUES" | "TABLE" | "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "DESCRIBE" | "SHOW" | "SUMMARIZE"
        )
}

/// The first keyword of `sql` (after whitespace and comments), upper case.
fn first_keyword(sql: &str) -> String {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map(|(_, r)| r).unwrap_or("").trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map(|(_, r)| r).unwrap_or("").trim_start();
        } else {
            break;
        }
    }
    s.chars().take_while(|c| c.is_ascii_alphabetic()).collect::<String>().to_ascii_uppercase()
}

/// The kind of one parsed statement: `ty` is DuckDB's prepared statement
/// type (None: it did not prepare on its own). The keyword only tells apart
/// statements DuckDB gives one type (BEGIN/COMMIT/ROLLBACK, CHECKPOINT).
pub fn kind_of(ty: Option<ffi::duckdb_statement_type>, sql: &str) -> Kind {
    let keyword = first_keyword(sql);
    let Some(ty) = ty else {
        // Not preparable alone, but parsed as exactly one statement.
        return match keyword.as_str() {
            "ATTACH" => Kind::Refused("ATTACH"),
            "DETACH" => Kind::Refused("DETACH"),
            "USE" => Kind::Refused("USE"),
            "SET" | "RESET" => Kind::Refused("SET"),
            "EXPORT" | "IMPORT" | "COPY" => Kind::Refused("COPY/EXPORT/IMPORT"),
            "LOAD" | "INSTALL" | "FORCE" if !sql.to_ascii_uppercase().contains("CHECKPOINT") => Kind::Refused("LOAD/INSTALL"),
            "CHECKPOINT" | "FORCE" => Kind::Checkpoint,
            "SELECT" | "FROM" | "VALUES" | "TABLE" | "DESCRIBE" | "SHOW" | "SUMMARIZE" | "EXPLAIN" => Kind::Read,
            // e.g. rows uploaded with the statement (a table the binder cannot see yet)
            "INSERT" | "UPDATE" | "DELETE" | "MERGE" => Kind::Dml,
            "CREATE" | "DROP" | "ALTER" => Kind::Ddl,
            "BEGIN" | "START" => Kind::Begin,
            "COMMIT" | "END" => Kind::Commit,
            "ROLLBACK" | "ABORT" => Kind::Rollback,
            _ => Kind::Unknown,
        };
    };
    match ty {
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPLAIN
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_RELATION => Kind::Read,
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_INSERT
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DELETE
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_MERGE_INTO => Kind::Dml,
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DROP
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ALTER
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE_FUNC => Kind::Ddl,
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_TRANSACTION => match keyword.as_str() {
            "BEGIN" | "START" => Kind::Begin,
            "COMMIT" | "END" => Kind::Commit,
            "ROLLBACK" | "ABORT" => Kind::Rollback,
            _ => Kind::Refused("transaction control"),
        },
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ATTACH => Kind::Refused("ATTACH"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DETACH => Kind::Refused("DETACH"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SET => {
            if keyword == "USE" {
                Kind::Refused("USE")
            } else {
                Kind::Refused("SET/RESET")
            }
        }
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_LOAD
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE_EXTENSIONS
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXTENSION => Kind::Refused("LOAD/INSTALL"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPORT
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY
        | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY_DATABASE => Kind::Refused("COPY/EXPORT"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PREPARE | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXECUTE => {
            Kind::Refused("PREPARE/EXECUTE (send the statement itself)")
        }
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VARIABLE_SET => Kind::Refused("SET VARIABLE"),
        _ if keyword == "CHECKPOINT" || keyword == "FORCE" => Kind::Checkpoint,
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PRAGMA | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CALL => Kind::Read,
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VACUUM | ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ANALYZE => Kind::Dml,
        _ => Kind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_skip_comments() {
        assert_eq!(first_keyword("  -- hi\n /* x */ commit"), "COMMIT");
        assert_eq!(first_keyword("force checkpoint"), "FORCE");
    }

    #[test]
    fn only_plain_reads_and_writes_return_connections_to_the_pool() {
        assert!(leaves_connection_clean(Kind::Read, "select 1"));
        assert!(leaves_connection_clean(Kind::Dml, " /* x */ INSERT INTO t VALUES (1)"));
        assert!(!leaves_connection_clean(Kind::Read, "PRAGMA enable_profiling"));
        assert!(!leaves_connection_clean(Kind::Ddl, "CREATE TEMP TABLE x (i INT)"));
        assert!(!leaves_connection_clean(Kind::Unknown, "SELECT 1"));
    }

    #[test]
    fn refused_kinds_say_what() {
        let e = Kind::Refused("ATTACH").check_allowed().unwrap_err();
        assert!(e.to_string().contains("ATTACH statements are not allowed"), "{e}");
        assert_eq!(Kind::Dml.check_allowed().unwrap(), Kind::Dml);
    }
}
