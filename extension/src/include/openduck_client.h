/*
 * openduck_client.h - the C API of the OpenDuck extension's Rust half
 * (src/ffi.rs) over query::client::Client, used by the C++ catalog.
 *
 * The Rust half hands this table to the C++ init function, so none of these
 * functions is an exported symbol of the extension (only the DuckDB entry
 * point openduck_duckdb_cpp_init is).
 *
 * Conventions: every call that can fail returns 0 on success, or an
 * OPENDUCK_ERROR_* code and fills *error (free its message with
 * free_error). Strings are NUL-terminated UTF-8. A session may be used by
 * several threads at once.
 */
#ifndef OPENDUCK_CLIENT_H
#define OPENDUCK_CLIENT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The Arrow C data and stream interfaces (arrow.apache.org/docs/format). */
#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE
struct ArrowSchema {
	const char *format;
	const char *name;
	const char *metadata;
	int64_t flags;
	int64_t n_children;
	struct ArrowSchema **children;
	struct ArrowSchema *dictionary;
	void (*release)(struct ArrowSchema *);
	void *private_data;
};
struct ArrowArray {
	int64_t length;
	int64_t null_count;
	int64_t offset;
	int64_t n_buffers;
	int64_t n_children;
	const void **buffers;
	struct ArrowArray **children;
	struct ArrowArray *dictionary;
	void (*release)(struct ArrowArray *);
	void *private_data;
};
#endif
#ifndef ARROW_C_STREAM_INTERFACE
#define ARROW_C_STREAM_INTERFACE
struct ArrowArrayStream {
	int (*get_schema)(struct ArrowArrayStream *, struct ArrowSchema *out);
	int (*get_next)(struct ArrowArrayStream *, struct ArrowArray *out);
	const char *(*get_last_error)(struct ArrowArrayStream *);
	void (*release)(struct ArrowArrayStream *);
	void *private_data;
};
#endif

#define OPENDUCK_CLIENT_API_VERSION 3

enum openduck_error_code {
	OPENDUCK_OK = 0,
	OPENDUCK_ERROR_INVALID_INPUT = 1,       /* bad arguments to this API */
	OPENDUCK_ERROR_UNREACHABLE = 2,         /* no server at the endpoint / bad endpoint */
	OPENDUCK_ERROR_UNAUTHENTICATED = 3,     /* missing or wrong token */
	OPENDUCK_ERROR_NOT_FOUND = 4,           /* unknown database or snapshot */
	OPENDUCK_ERROR_INVALID_ARGUMENT = 5,    /* SQL that does not parse or bind */
	OPENDUCK_ERROR_PERMISSION_DENIED = 6,   /* refused by the server's sandbox */
	OPENDUCK_ERROR_FAILED_PRECONDITION = 7, /* no snapshot yet, write to a snapshot */
	OPENDUCK_ERROR_SERVER = 8,              /* any other server error */
	OPENDUCK_ERROR_ARROW = 9,               /* bad Arrow data */
	OPENDUCK_ERROR_INTERNAL = 10,           /* a bug in the extension */
	OPENDUCK_ERROR_CONFLICT = 11,           /* a transaction conflict, or the transaction is gone: roll back */
	OPENDUCK_ERROR_UNAVAILABLE = 12         /* retry later (e.g. a seal failed; another server is the writer) */
};

typedef struct openduck_error {
	int32_t code;
	char *message; /* owned by Rust: release with free_error */
} openduck_error;

/* What a statement did. */
typedef struct openduck_result {
	int64_t snapshot_id; /* snapshot read; else the newest sealed snapshot */
	int32_t is_write;
	int64_t rows_affected;
	uint64_t catalog_version; /* changes whenever the remote schema may have changed */
} openduck_result;

/* Where a statement runs: NULL = autocommit on the server, else inside the
 * server-side transaction `id` (from new_txn_id). `start` is 1 until a
 * statement of the transaction succeeded (it opens the transaction on the
 * server); the statements COMMIT and ROLLBACK end it. */
typedef struct openduck_txn {
	const char *id;
	int32_t start;
} openduck_txn;

/* Payload bytes a session moved: SQL and Arrow IPC sent, Arrow IPC received. */
typedef struct openduck_stats {
	uint64_t requests;
	uint64_t bytes_sent;
	uint64_t bytes_received;
} openduck_stats;

typedef struct openduck_session openduck_session; /* opaque */

typedef struct openduck_client_api {
	uint32_t version; /* OPENDUCK_CLIENT_API_VERSION */

	/* Connect to `endpoint` (e.g. "http://localhost:7878") with an optional
	 * bearer `token` (NULL: none) for `database`. Returns NULL on error. */
	openduck_session *(*connect)(const char *endpoint, const char *token, const char *database,
	                             openduck_error *error);

	/* Execute `sql` on snapshot `snapshot` (-1: latest) and move a stream of
	 * its rows into *out: a small result arrived with the answer (one round
	 * trip), a larger one is fetched lazily by get_next. */
	int32_t (*query)(openduck_session *session, const char *sql, int64_t snapshot, const openduck_txn *txn,
	                 struct ArrowArrayStream *out, openduck_result *result, openduck_error *error);

	/* Execute `sql` and discard its rows (DDL, writes, COMMIT). */
	int32_t (*execute)(openduck_session *session, const char *sql, const openduck_txn *txn, openduck_result *result,
	                   openduck_error *error);

	/* Execute `sql` with the rows of `input` readable as table `table` (e.g.
	 * "INSERT INTO t SELECT * FROM <table>"). Takes ownership of *input. */
	int32_t (*execute_ingest)(openduck_session *session, const char *sql, const char *table, const openduck_txn *txn,
	                          struct ArrowArrayStream *input, openduck_result *result, openduck_error *error);

	/* Write a new random transaction id (32 hex digits and a NUL) to out. */
	void (*new_txn_id)(char out[33]);

	/* What the session moved so far. */
	void (*stats)(openduck_session *session, openduck_stats *out);

	void (*free_session)(openduck_session *session);
	void (*free_error)(openduck_error *error);
} openduck_client_api;

#ifdef __cplusplus
}
#endif

#endif /* OPENDUCK_CLIENT_H */
