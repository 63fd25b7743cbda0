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
		if (changed_catalog && txn_id.size()) {
			// This transaction changed the schema: only its own server-side transaction sees that.
			schemas = OpenDuckSchemaSet::Load(catalog, context, ReadSnapshot(), &txn);
			txn.start = 0;
		} else {
			schemas = catalog.CachedSchemas(context);
		}
	}
	return *schemas;
}

optional_ptr<OpenDuckSchemaSet> OpenDuckTransaction::RefreshAfterMiss(ClientContext &context) {
	{
		lock_guard<mutex> guard(lock);
		if (refreshed || catalog.GetUrl().snapshot >= 0) {
			return nullptr; // a snapshot's catalog never changes
		}
		refreshed = true;
		if (schemas) {
			catalog.Retain(std::move(schemas));
		}
		catalog.InvalidateCache();
	}
	return &GetSchemas(context);
}

int64_t OpenDuckTransaction::ReadSnapshot() const {
	return catalog.GetUrl().snapshot;
}

void OpenDuckTransaction::RequireRemoteTransaction() {
	lock_guard<mutex> guard(lock);
	force_remote = true;
}

const openduck_txn *OpenDuckTransaction::Txn(ClientContext &context) {
	lock_guard<mutex> guard(lock);
	if (catalog.GetUrl().snapshot >= 0) {
		return nullptr; // a snapshot is immutable: every read of it is consistent on its own
	}
	if (!force_remote && context.transaction.IsAutoCommit()) {
		return nullptr;
	}
	if (txn_id.empty()) {
		txn_id = OpenDuckClient::NewTransactionId();
		txn.id = txn_id.c_str();
		txn.start = 1;
	}
	return &txn;
}

void OpenDuckTransaction::Succeeded(const openduck_txn *used, const openduck_result &result) {
	catalog.ObserveVersion(result.catalog_version);
	if (used) {
		lock_guard<mutex> guard(lock);
		txn.start = 0;
	}
}

unique_ptr<ArrowArrayStreamWrapper> OpenDuckTransaction::Query(ClientContext &context, const string &sql,
                                                               openduck_result &result) {
	auto used = Txn(context);
	auto stream = catalog.GetClient().Query(sql, ReadSnapshot(), used, result);
	Succeeded(used, result);
	return stream;
}

openduck_result OpenDuckTransaction::Execute(ClientContext &context, const string &sql) {
	auto used = Txn(context);
	auto result = catalog.GetClient().Execute(sql, used);
	Succeeded(used, result);
	return result;
}

openduck_result OpenDuckTransaction::ExecuteIngest(ClientContext &context, const string &sql, const string &table,
                                                   ArrowArrayStream &input) {
	auto used = Txn(context);
	auto result = catalog.GetClient().ExecuteIngest(sql, table, input, used);
	Succeeded(used, result);
	return result;
}

void OpenDuckTransaction::ChangedCatalog() {
	lock_guard<mutex> guard(lock);
	changed_catalog = true;
	if (schemas) {
		// Entries of the old catalog may still be referenced by the running statement.
		catalog.Retain(std::move(schemas));
	}
	catalog.InvalidateCache();
}

ErrorData OpenDuckTransaction::CommitRemote() {
	lock_guard<mutex> guard(lock);
	if (txn_id.empty()) {
		return ErrorData();
	}
	openduck_result result {0, 0, 0, 0};
	string message;
	// Nothing succeeded on the server: there is nothing to commit there.
	auto sql = txn.start ? "ROLLBACK" : "COMMIT";
	auto code = catalog.GetClient().TryExecute(sql, &txn, result, message);
	txn_id.clear();
	if (code != OPENDUCK_OK && !txn.start) {
		return ErrorData(TransactionException("OpenDuck: COMMIT of the remote transaction on '%s' failed: %s",
		                                      catalog.GetName().GetIdentifierName(), message));
	}
	if (changed_catalog) {
		catalog.InvalidateCache();
	}
	return ErrorData();
}

void OpenDuckTransaction::RollbackRemote() {
	lock_guard<mutex> guard(lock);
	if (txn_id.empty()) {
		return;
	}
	openduck_result result {0, 0, 0, 0};
	string message;
	// Best effort: a transaction the server lost (restart, idle timeout) is rolled back already.
	catalog.GetClient().TryExecute("ROLLBACK", &txn, result, message);
	txn_id.clear();
	if (changed_catalog) {
		catalog.InvalidateCache(); // what was cached inside the transaction is gone with it
	}
}

} // namespace duckdb
