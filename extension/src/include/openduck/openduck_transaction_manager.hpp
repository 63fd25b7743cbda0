//===----------------------------------------------------------------------===//
// OpenDuckTransactionManager: hands out OpenDuckTransactions; commit and
// rollback end their server-side transactions; CHECKPOINT seals a snapshot.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/common/reference_map.hpp"
#include "duckdb/transaction/transaction_manager.hpp"
#include "openduck/openduck_transaction.hpp"

namespace duckdb {

class OpenDuckCatalog;

class OpenDuckTransactionManager : public TransactionManager {
public:
	OpenDuckTransactionManager(AttachedDatabase &db, OpenDuckCatalog &catalog);

	Transaction &StartTransaction(ClientContext &context) override;
	ErrorData CommitTransaction(ClientContext &context, Transaction &transaction) override;
	void RollbackTransaction(Transaction &transaction) override;
	void Checkpoint(ClientContext &context, bool force = false) override;

private:
	void Remove(Transaction &transaction);

	OpenDuckCatalog &catalog;
	mutex lock;
	reference_map_t<Transaction, unique_ptr<OpenDuckTransaction>> transactions;
};

} // namespace duckdb
