#include "openduck/openduck_catalog.hpp"

#include "duckdb/execution/physical_plan_generator.hpp"
#include "duckdb/parser/parsed_data/create_schema_info.hpp"
#include "duckdb/parser/parsed_data/drop_info.hpp"
#include "duckdb/planner/operator/logical_create_table.hpp"
#include "duckdb/planner/operator/logical_delete.hpp"
#include "duckdb/planner/operator/logical_insert.hpp"
#include "duckdb/planner/operator/logical_update.hpp"
#include "duckdb/storage/database_size.hpp"
#include "duckdb/parser/query_node/delete_query_node.hpp"
#include "duckdb/parser/query_node/insert_query_node.hpp"
#include "duckdb/parser/query_node/update_query_node.hpp"
#include "duckdb/parser/parsed_expression.hpp"
#include "duckdb/parser/tableref.hpp"
#include "openduck/openduck_insert.hpp"
#include "openduck/openduck_modify.hpp"
#include "openduck/openduck_query_function.hpp"
#include "openduck/openduck_schema_set.hpp"
#include "openduck/openduck_sql.hpp"
#include "openduck/openduck_transaction.hpp"

namespace duckdb {

//! Schema sets kept alive after their transaction (see Retain).
static constexpr idx_t RETAINED_SCHEMA_SETS = 16;

OpenDuckCatalog::OpenDuckCatalog(AttachedDatabase &db, OpenDuckAttachUrl url_p, shared_ptr<OpenDuckClient> client_p,
                                 bool read_only_p)
    : Catalog(db), url(std::move(url_p)), client(std::move(client_p)), read_only(read_only_p) {
}

OpenDuckCatalog::~OpenDuckCatalog() {
}

void OpenDuckCatalog::Initialize(bool load_builtin) {
}

void OpenDuckCatalog::Initialize(optional_ptr<ClientContext> context, bool load_builtin) {
}

OpenDuckSchemaSet &OpenDuckCatalog::GetSchemas(ClientContext &context) {
	return OpenDuckTransaction::Get(context, *this).GetSchemas(context);
}

int64_t OpenDuckCatalog::ReadSnapshot(ClientContext &context) {
	return OpenDuckTransaction::Get(context, *this).ReadSnapshot();
}

shared_ptr<OpenDuckSchemaSet> OpenDuckCatalog::CachedSchemas(ClientContext &context) {
	{
		lock_guard<mutex> guard(cache_lock);
		if (cache) {
			return cache;
		}
	}
	// Loaded outside the lock (a round trip); concurrent loads are harmless.
	auto loaded = OpenDuckSchemaSet::Load(*this, context, url.snapshot, nullptr);
	lock_guard<mutex> guard(cache_lock);
	cache = loaded;
	cache_version = loaded->CatalogVersion();
	return loaded;
}

//! DESCRIBE results kept per attachment.
static constexpr idx_t DESCRIBED_QUERIES = 256;

bool OpenDuckCatalog::CachedDescribe(const string &sql, vector<LogicalType> &types, vector<Identifier> &names) {
	lock_guard<mutex> guard(cache_lock);
	auto it = described.find(sql);
	if (it == described.end() || it->second.version != last_version || last_version == 0) {
		return false;
	}
	types = it->second.types;
	names = it->second.names;
	return true;
}

void OpenDuckCatalog::CacheDescribe(const string &sql, uint64_t version, const vector<LogicalType> &types,
                                    const vector<Identifier> &names) {
	lock_guard<mutex> guard(cache_lock);
	if (described.size() >= DESCRIBED_QUERIES) {
		described.clear();
	}
	last_version = version;
	described[sql] = Described {version, types, names};
}

void OpenDuckCatalog::ObserveVersion(uint64_t version) {
	lock_guard<mutex> guard(cache_lock);
	last_version = version;
	if (cache && cache_version != version) {
		DropCacheLocked();
	}
}

void OpenDuckCatalog::InvalidateCache() {
	lock_guard<mutex> guard(cache_lock);
	described.clear();
	DropCacheLocked();
}

void OpenDuckCatalog::DropCacheLocked() {
	if (cache) {
		RetainLocked(std::move(cache));
		cache.reset();
	}
}

OpenDuckCatalog &OpenDuckCatalog::Find(ClientContext &context, const string &name, const string &function) {
	auto catalog = Catalog::GetCatalogEntry(context, Identifier(name));
	if (!catalog || catalog->GetCatalogType() != "openduck") {
		throw BinderException("%s: '%s' is not an attached OpenDuck database (ATTACH 'openduck:<db>' AS %s first)",
		                      function, name, name);
	}
	return catalog->Cast<OpenDuckCatalog>();
}

void OpenDuckCatalog::CheckWritable(ClientContext &context, const string &statement) const {
	if (url.snapshot >= 0) {
		throw PermissionException("OpenDuck: cannot %s: '%s' is attached at snapshot %d, which is read-only (time "
		                          "travel); attach without ?snapshot= to write",
		                          statement, GetName().GetIdentifierName(), url.snapshot);
	}
	if (read_only) {
		throw PermissionException("OpenDuck: cannot %s: '%s' is attached READ_ONLY; attach it without READ_ONLY "
		                          "to write",
		                          statement, GetName().GetIdentifierName());
	}
}

openduck_result OpenDuckCatalog::ExecuteDdl(ClientContext &context, const string &sql) {
	auto &transaction = OpenDuckTransaction::Get(context, *this);
	auto result = transaction.Execute(context, sql);
	transaction.ChangedCatalog();
	return result;
}

void OpenDuckCatalog::Retain(shared_ptr<OpenDuckSchemaSet> schemas) {
	lock_guard<mutex> guard(cache_lock);
	RetainLocked(std::move(schemas));
}

void OpenDuckCatalog::RetainLocked(shared_ptr<OpenDuckSchemaSet> schemas) {
	retained.push_back(std::move(schemas));
	while (retained.size() > RETAINED_SCHEMA_SETS) {
		retained.pop_front();
	}
}

optional_ptr<CatalogEntry> OpenDuckCatalog::CreateSchema(CatalogTransaction transaction, CreateSchemaInfo &info) {
	CheckWritable(transaction.GetContext(), "CREATE SCHEMA");
	auto &context = transaction.GetContext();
	auto name = info.SchemaName().GetIdentifierName();
	ExecuteDdl(context, OpenDuckSql::CreatePrefix(info.on_conflict, "SCHEMA") + OpenDuckSql::Quote(name));
	return GetSchemas(context).GetSchema(Identifier(name)).get();
}

void OpenDuckCatalog::DropSchema(ClientContext &context, DropInfo &info) {
	CheckWritable(context, "DROP SCHEMA");
	auto sql = string("DROP SCHEMA ");
	if (info.if_not_found == OnEntryNotFound::RETURN_NULL) {
		sql += "IF EXISTS ";
	}
	sql += OpenDuckSql::Quote(info.GetQualifiedName().Name().GetIdentifierName());
	if (info.cascade) {
		sql += " CASCADE";
	}
	ExecuteDdl(context, sql);
}

optional_ptr<SchemaCatalogEntry> OpenDuckCatalog::LookupSchema(CatalogTransaction transaction,
                                                               const EntryLookupInfo &schema_lookup,
                                                               OnEntryNotFound if_not_found) {
	if (!transaction.HasContext()) {
		// System transactions (no client) cannot reach the server.
		return nullptr;
	}
	auto &schemas = GetSchemas(transaction.GetContext());
	return LookupSchemaPath(transaction, schema_lookup, if_not_found,
	                        [&](const EntryLookupInfo &lookup) -> optional_ptr<CatalogEntry> {
		                        return schemas.GetSchema(lookup.GetEntryIdentifier()).get();
	                        });
}

void OpenDuckCatalog::ScanSchemas(ClientContext &context, std::function<void(SchemaCatalogEntry &)> callback) {
	GetSchemas(context).Scan(callback);
}

PhysicalOperator &OpenDuckCatalog::PlanCreateTableAs(ClientContext &context, PhysicalPlanGenerator &planner,
                                                     LogicalCreateTable &op, PhysicalOperator &plan) {
	CheckWritable(context, "CREATE TABLE AS");
	auto &insert = planner.Make<OpenDuckInsert>(op, *this, op.schema, std::move(op.info));
	insert.children.push_back(plan);
	return insert;
}

PhysicalOperator &OpenDuckCatalog::PlanInsert(ClientContext &context, PhysicalPlanGenerator &planner,
                                              LogicalInsert &op, optional_ptr<PhysicalOperator> plan) {
	CheckWritable(context, "INSERT");
	if (op.return_chunk) {
		throw NotImplementedException("OpenDuck: INSERT ... RETURNING is not supported on remote tables");
	}
	if (op.on_conflict_info.action_type != OnConflictAction::THROW) {
		throw NotImplementedException("OpenDuck: INSERT ... ON CONFLICT is not supported on remote tables");
	}
	if (!plan) {
		throw NotImplementedException("OpenDuck: this INSERT form is not supported on remote tables");
	}
	if (!op.column_index_map.empty()) {
		plan = planner.ResolveDefaultsProjection(op, *plan);
	}
	auto &insert = planner.Make<OpenDuckInsert>(op, *this, op.table);
	insert.children.push_back(*plan);
	return insert;
}

PhysicalOperator &OpenDuckCatalog::PlanDelete(ClientContext &context, PhysicalPlanGenerator &planner,
                                              LogicalDelete &op, PhysicalOperator &plan) {
	CheckWritable(context, "DELETE");
	if (op.return_chunk) {
		throw NotImplementedException("OpenDuck: DELETE ... RETURNING is not supported on remote tables");
	}
	// The row ids scanned and the delete must see one state: one server-side transaction.
	OpenDuckTransaction::Get(context, *this).RequireRemoteTransaction();
	auto &modify = planner.Make<OpenDuckModify>(op, *this);
	modify.children.push_back(plan);
	return modify;
}

PhysicalOperator &OpenDuckCatalog::PlanUpdate(ClientContext &context, PhysicalPlanGenerator &planner,
                                              LogicalUpdate &op, PhysicalOperator &plan) {
	CheckWritable(context, "UPDATE");
	if (op.return_chunk) {
		throw NotImplementedException("OpenDuck: UPDATE ... RETURNING is not supported on remote tables");
	}
	// The row ids scanned and the update must see one state: one server-side transaction.
	OpenDuckTransaction::Get(context, *this).RequireRemoteTransaction();
	auto &modify = planner.Make<OpenDuckModify>(op, *this, plan.types);
	modify.children.push_back(plan);
	return modify;
}

bool OpenDuckCatalog::Supports(RemoteCapability capability) const {
	switch (capability) {
	case RemoteCapability::IS_REMOTE:
	case RemoteCapability::EXECUTE_QUERY_NODE:
		return url.pushdown;
	default:
		// DDL stays local: CreateTable/DropEntry send it and refresh the catalog.
		return false;
	}
}

template <class NODE>
static bool HasReturning(const QueryNode &node) {
	return !node.Cast<NODE>().returning_list.empty();
}

bool OpenDuckCatalog::SupportsPushdown(const QueryNode &node) {
	switch (node.type) {
	case QueryNodeType::SELECT_NODE:
	case QueryNodeType::SET_OPERATION_NODE:
	case QueryNodeType::CTE_NODE:
	case QueryNodeType::RECURSIVE_CTE_NODE:
		return true;
	// Writes run on the server as one statement; it reports only a row count, so RETURNING stays local
	// (where it is refused).
	case QueryNodeType::INSERT_QUERY_NODE:
		return !HasReturning<InsertQueryNode>(node);
	case QueryNodeType::UPDATE_QUERY_NODE:
		return !HasReturning<UpdateQueryNode>(node);
	case QueryNodeType::DELETE_QUERY_NODE:
		return !HasReturning<DeleteQueryNode>(node);
	default:
		return false;
	}
}

bool OpenDuckCatalog::SupportsPushdown(const ParsedExpression &expression) {
	// Prepared-statement parameters have no value on the server: such queries run locally.
	return !expression.HasParameter();
}

unique_ptr<TableRef> OpenDuckCatalog::RemoteExecute(ClientContext &context, unique_ptr<QueryNode> node) {
	bool is_write = node->type == QueryNodeType::INSERT_QUERY_NODE ||
	                node->type == QueryNodeType::UPDATE_QUERY_NODE || node->type == QueryNodeType::DELETE_QUERY_NODE;
	return OpenDuckQueryFunction::Ref(GetName().GetIdentifierName(), node->ToString(), is_write);
}

DatabaseSize OpenDuckCatalog::GetDatabaseSize(ClientContext &context) {
	return DatabaseSize();
}

string OpenDuckCatalog::GetDBPath() {
	return url.Display();
}

} // namespace duckdb
