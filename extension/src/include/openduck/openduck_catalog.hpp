//===----------------------------------------------------------------------===//
// OpenDuckCatalog: an attached OpenDuck database. Its schemas and tables
// come from the server and are cached under the server's catalog version:
// every answer carries that version, and one that differs drops the cache
// (so does this client's own DDL); a lookup that misses reloads once per
// transaction. Reads stream through OpenDuckScan, CREATE/DROP run on the
// server as SQL, INSERT and CREATE TABLE AS stream local rows up
// (OpenDuckInsert); remote calls go through OpenDuckTransaction.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/catalog/catalog.hpp"
#include "openduck/openduck_attach_url.hpp"
#include "openduck/openduck_client.hpp"

namespace duckdb {

class OpenDuckSchemaSet;

class OpenDuckCatalog : public Catalog {
public:
	OpenDuckCatalog(AttachedDatabase &db, OpenDuckAttachUrl url, shared_ptr<OpenDuckClient> client, bool read_only);
	~OpenDuckCatalog() override;

	void Initialize(bool load_builtin) override;
	void Initialize(optional_ptr<ClientContext> context, bool load_builtin) override;
	string GetCatalogType() override {
		return "openduck";
	}

	optional_ptr<CatalogEntry> CreateSchema(CatalogTransaction transaction, CreateSchemaInfo &info) override;
	optional_ptr<SchemaCatalogEntry> LookupSchema(CatalogTransaction transaction, const EntryLookupInfo &schema_lookup,
	                                              OnEntryNotFound if_not_found) override;
	void ScanSchemas(ClientContext &context, std::function<void(SchemaCatalogEntry &)> callback) override;

	PhysicalOperator &PlanCreateTableAs(ClientContext &context, PhysicalPlanGenerator &planner, LogicalCreateTable &op,
	                                    PhysicalOperator &plan) override;
	PhysicalOperator &PlanInsert(ClientContext &context, PhysicalPlanGenerator &planner, LogicalInsert &op,
	                             optional_ptr<PhysicalOperator> plan) override;
	PhysicalOperator &PlanDelete(ClientContext &context, PhysicalPlanGenerator &planner, LogicalDelete &op,
	                             PhysicalOperator &plan) override;
	PhysicalOperator &PlanUpdate(ClientContext &context, PhysicalPlanGenerator &planner, LogicalUpdate &op,
	                             PhysicalOperator &plan) override;

	//! Remote pushdown: DuckDB hands queries that only touch this database to
	//! RemoteExecute, which runs them on the server (OpenDuckQueryFunction).
	bool Supports(RemoteCapability capability) const override;
	bool SupportsPushdown(const QueryNode &node) override;
	bool SupportsPushdown(const ParsedExpression &expression) override;
	unique_ptr<TableRef> RemoteExecute(ClientContext &context, unique_ptr<QueryNode> node) override;

	DatabaseSize GetDatabaseSize(ClientContext &context) override;
	bool InMemory() override {
		return false;
	}
	string GetDBPath() override;

public:
	//! The attached OpenDuck database called `name` (for `function`'s error message).
	static OpenDuckCatalog &Find(ClientContext &context, const string &name, const string &function);
	const OpenDuckClient &GetClient() const {
		return *client;
	}
	const OpenDuckAttachUrl &GetUrl() const {
		return url;
	}
	//! The schemas visible to the current transaction.
	OpenDuckSchemaSet &GetSchemas(ClientContext &context);
	//! The snapshot reads of the current transaction use (-1: latest).
	int64_t ReadSnapshot(ClientContext &context);
	//! Throw unless this database accepts writes (not READ_ONLY, not a snapshot).
	void CheckWritable(ClientContext &context, const string &statement) const;
	//! Run DDL on the server (in the current transaction); later lookups see its result.
	openduck_result ExecuteDdl(ClientContext &context, const string &sql);

	//! The cached catalog (loaded with one round trip when there is none).
	shared_ptr<OpenDuckSchemaSet> CachedSchemas(ClientContext &context);
	//! Every answer's catalog version: one that differs from the cached catalog's drops it.
	void ObserveVersion(uint64_t version);
	void InvalidateCache();
	//! The result columns of a pushed-down query, as described under the current catalog version.
	bool CachedDescribe(const string &sql, vector<LogicalType> &types, vector<Identifier> &names);
	void CacheDescribe(const string &sql, uint64_t version, const vector<LogicalType> &types,
	                   const vector<Identifier> &names);
	//! Keep loaded schema sets alive a while after their transaction ended
	//! (late references to their entries stay valid).
	void Retain(shared_ptr<OpenDuckSchemaSet> schemas);

private:
	void DropSchema(ClientContext &context, DropInfo &info) override;
	//! Under cache_lock: retain a schema set (bounded), or the cached one.
	void RetainLocked(shared_ptr<OpenDuckSchemaSet> schemas);
	void DropCacheLocked();

	OpenDuckAttachUrl url;
	shared_ptr<OpenDuckClient> client;
	bool read_only;
	mutex cache_lock;
	shared_ptr<OpenDuckSchemaSet> cache;
	uint64_t cache_version = 0;
	deque<shared_ptr<OpenDuckSchemaSet>> retained;
	struct Described {
		uint64_t version;
		vector<LogicalType> types;
		vector<Identifier> names;
	};
	//! DESCRIBE results by SQL text; the versions they were taken at must match the latest one seen.
	unordered_map<string, Described> described;
	uint64_t last_version = 0;
};

} // namespace duckdb
