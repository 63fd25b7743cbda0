#include "openduck/openduck_transaction_manager.hpp"

#include "openduck/openduck_catalog.hpp"

namespace duckdb {

OpenDuckTransactionManager::OpenDuckTransactionManager(AttachedDatabase &db, OpenDuckCatalog &catalog_p)
    : TransactionManager(db), catalog(catalog_p) {
}

Transaction &OpenDuckTransactionManager::StartTransaction(ClientContext &context) {
	auto transaction = make_uniq<OpenDuckTransaction>(catalog, *this, context);
	auto &result = *transaction;
	lock_guard<mutex> guard(lock);
	transactions[result] = std::move(transaction);
	return result;
}

void OpenDuckTransactionManager::Remove(Transaction &transaction) {
	unique_ptr<OpenDuckTransaction> removed;
	{
		lock_guard<mutex> guard(lock);
		auto it = transactions.find(transaction);
		if (it == transactions.end()) {
			return;
		}
		removed = std::move(it->second);
		transactions.erase(it);
	}
	// destroyed outside the lock (it hands its catalog to OpenDuckCatalog::Retain)
}

ErrorData OpenDuckTransactionManager::CommitTransaction(ClientContext &context, Transaction &transaction) {
	auto error = transaction.Cast<OpenDuckTransaction>().CommitRemote();
	Remove(transaction);
	return error;
}

void OpenDuckTransactionManager::RollbackTransaction(Transaction &transaction) {
	transaction.Cast<OpenDuckTransaction>().RollbackRemote();
	Remove(transaction);
}

void OpenDuckTransactionManager::Checkpoint(ClientContext &context, bool force) {
	// CHECKPOINT <attachment>: the server checkpoints its writer now, which seals a snapshot.
	if (catalog.GetUrl().snapshot >= 0) {
		return; // a snapshot is sealed already
	}
	catalog.GetClient().Execute(force ? "FORCE CHECKPOINT" : "CHECKPOINT", nullptr);
}

} // namespace duckdb
