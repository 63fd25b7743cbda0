//===----------------------------------------------------------------------===//
// OpenDuckTransaction: one DuckDB transaction's view of the remote database.
// The first lookup loads the catalog and pins its snapshot, so every read in
// the transaction sees one consistent state. A write moves the pin to the
// snapshot it created and drops the loaded catalog (the next lookup reloads).
// Remote writes commit on the server right away: ROLLBACK cannot undo them.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/transaction/transaction.hpp"

namespace duckdb {

class OpenDuckCatalog;
class OpenDuckSchemaSet;

class OpenDuckTransaction : public Transaction {
public:
	OpenDuckTransaction(OpenDuckCatalog &catalog, TransactionManager &manager, ClientContext &context);
	~OpenDuckTransaction() override;

	static OpenDuckTransaction &Get(ClientContext &context, Catalog &catalog);

	OpenDuckSchemaSet &GetSchemas(ClientContext &context);
	//! The snapshot reads use: the attached snapshot, else the pinned one, else -1 (latest).
	int64_t ReadSnapshot();
	void AfterWrite(int64_t snapshot_id);

private:
	int64_t ReadSnapshotLocked() const;

	OpenDuckCatalog &catalog;
	mutex lock;
	shared_ptr<OpenDuckSchemaSet> schemas;
	int64_t pinned_snapshot = -1;
};

} // namespace duckdb
