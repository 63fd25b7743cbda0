#include "openduck/openduck_transaction.hpp"

#include "openduck/openduck_catalog.hpp"
#include "openduck/openduck_schema_set.hpp"

namespace duckdb {

OpenDuckTransaction::OpenDuckTransaction(OpenDuckCatalog &catalog_p, TransactionManager &manager,
                                         ClientContext &context)
    : Transaction(manager, context), catalog(catalog_p) {
}

OpenDuckTransaction::~OpenDuckTransaction() {
	if (schemas) {
		catalog.Retain(std::move(schemas));
	}
}

OpenDuckTransaction &OpenDuckTransaction::Get(ClientContext &context, Catalog &catalog) {
	return Transaction::Get(context, catalog).Cast<OpenDuckTransaction>();
}

OpenDuckSchemaSet &OpenDuckTransaction::GetSchemas(ClientContext &context) {
	lock_guard<mutex> guard(lock);
	if (!schemas) {
		schemas = OpenDuckSchemaSet::Load(catalog, context, ReadSnapshotLocked());
		if (catalog.GetUrl().snapshot < 0 && schemas->SnapshotId() >= 0) {
			pinned_snapshot = schemas->SnapshotId();
		}
	}
	return *schemas;
}

int64_t OpenDuckTransaction::ReadSnapshotLocked() const {
	if (catalog.GetUrl().snapshot >= 0) {
		return catalog.GetUrl().snapshot;
	}
	return pinned_snapshot;
}

int64_t OpenDuckTransaction::ReadSnapshot() {
	lock_guard<mutex> guard(lock);
	return ReadSnapshotLocked();
}

void OpenDuckTransaction::AfterWrite(int64_t snapshot_id) {
	lock_guard<mutex> guard(lock);
	if (schemas) {
		// Entries of the old catalog may still be referenced by the running statement.
		catalog.Retain(std::move(schemas));
	}
	pinned_snapshot = snapshot_id > 0 ? snapshot_id : -1;
}

} // namespace duckdb
