#include "openduck/openduck_client.hpp"

#include "duckdb/common/exception/binder_exception.hpp"
#include "duckdb/common/exception/catalog_exception.hpp"
#include "duckdb/common/exception/conversion_exception.hpp"
#include "duckdb/common/exception/parser_exception.hpp"

namespace duckdb {

static const openduck_client_api *client_api = nullptr;

static const openduck_client_api &Api() {
	if (!client_api) {
		throw InternalException("OpenDuck: the client API was not installed (extension not initialized)");
	}
	return *client_api;
}

void OpenDuckClient::SetApi(const openduck_client_api *api) {
	if (!api || api->version != OPENDUCK_CLIENT_API_VERSION) {
		throw InternalException("OpenDuck: client API version mismatch (rebuild the extension)");
	}
	client_api = api;
}

static string TakeMessage(openduck_error &error) {
	string message = error.message ? string(error.message) : string("unknown error");
	Api().free_error(&error);
	return message;
}

//! SQL errors from the server carry DuckDB's "<Type> Error: " prefix: rethrow them as that type, so a
//! remote "Catalog Error" is a CatalogException here too.
static void ThrowRemoteSqlError(const string &message) {
	auto colon = message.find(" Error: ");
	if (colon == string::npos || colon > 40) {
		return;
	}
	auto kind = message.substr(0, colon);
	auto detail = message.substr(colon + 8);
	if (kind == "Catalog") {
		throw CatalogException("%s", detail);
	} else if (kind == "Binder") {
		throw BinderException("%s", detail);
	} else if (kind == "Parser") {
		throw ParserException("%s", detail);
	} else if (kind == "Conversion") {
		throw ConversionException("%s", detail);
	} else if (kind == "Constraint") {
		throw ConstraintException("%s", detail);
	} else if (kind == "Invalid Input") {
		throw InvalidInputException("%s", detail);
	} else if (kind == "Not implemented") {
		throw NotImplementedException("%s", detail);
	} else if (kind == "Out of Range") {
		throw OutOfRangeException("%s", detail);
	}
}

void OpenDuckClient::ThrowStreamError(const string &what, string message) {
	static const string EXTERNAL = "External error: ";
	if (StringUtil::StartsWith(message, EXTERNAL)) {
		message = message.substr(EXTERNAL.size());
	}
	ThrowRemoteSqlError(message);
	throw IOException("OpenDuck: %s from the server failed: %s", what, message);
}

void OpenDuckClient::ThrowError(int32_t code, const string &message) {
	if (code == OPENDUCK_ERROR_INVALID_ARGUMENT) {
		ThrowRemoteSqlError(message);
	}
	switch (code) {
	case OPENDUCK_ERROR_UNREACHABLE:
		throw IOException("OpenDuck: %s", message);
	case OPENDUCK_ERROR_UNAUTHENTICATED:
	case OPENDUCK_ERROR_PERMISSION_DENIED:
		throw PermissionException("OpenDuck: %s", message);
	case OPENDUCK_ERROR_NOT_FOUND:
		throw CatalogException("OpenDuck: %s", message);
	case OPENDUCK_ERROR_CONFLICT:
		throw TransactionException("OpenDuck: %s", message);
	case OPENDUCK_ERROR_UNAVAILABLE:
		throw IOException("OpenDuck (retry later): %s", message);
	case OPENDUCK_ERROR_INVALID_INPUT:
	case OPENDUCK_ERROR_INVALID_ARGUMENT:
	case OPENDUCK_ERROR_FAILED_PRECONDITION:
		throw InvalidInputException("OpenDuck: %s", message);
	default:
		throw IOException("OpenDuck: %s", message);
	}
}

OpenDuckClient::OpenDuckClient(openduck_session *session_p, string endpoint_p, string database_p)
    : session(session_p), endpoint(std::move(endpoint_p)), database(std::move(database_p)) {
}

OpenDuckClient::~OpenDuckClient() {
	if (session && client_api) {
		client_api->free_session(session);
	}
}

shared_ptr<OpenDuckClient> OpenDuckClient::Connect(const string &endpoint, const string &token,
                                                   const string &database) {
	openduck_error error {0, nullptr};
	auto session = Api().connect(endpoint.c_str(), token.empty() ? nullptr : token.c_str(), database.c_str(), &error);
	if (!session) {
		ThrowError(error.code, TakeMessage(error));
	}
	return shared_ptr<OpenDuckClient>(new OpenDuckClient(session, endpoint, database));
}

int32_t OpenDuckClient::TryQuery(const string &sql, int64_t snapshot, const openduck_txn *txn,
                                 openduck_result &result, unique_ptr<ArrowArrayStreamWrapper> &stream,
                                 string &message) const {
	stream = make_uniq<ArrowArrayStreamWrapper>();
	openduck_error error {0, nullptr};
	auto code = Api().query(session, sql.c_str(), snapshot, txn, &stream->arrow_array_stream, &result, &error);
	if (code != OPENDUCK_OK) {
		stream.reset();
		message = TakeMessage(error);
	}
	return code;
}

unique_ptr<ArrowArrayStreamWrapper> OpenDuckClient::Query(const string &sql, int64_t snapshot, const openduck_txn *txn,
                                                          openduck_result &result) const {
	unique_ptr<ArrowArrayStreamWrapper> stream;
	string message;
	auto code = TryQuery(sql, snapshot, txn, result, stream, message);
	if (code != OPENDUCK_OK) {
		ThrowError(code, message);
	}
	return stream;
}

int32_t OpenDuckClient::TryExecute(const string &sql, const openduck_txn *txn, openduck_result &result,
                                   string &message) const {
	openduck_error error {0, nullptr};
	auto code = Api().execute(session, sql.c_str(), txn, &result, &error);
	if (code != OPENDUCK_OK) {
		message = TakeMessage(error);
	}
	return code;
}

openduck_result OpenDuckClient::Execute(const string &sql, const openduck_txn *txn) const {
	openduck_result result {0, 0, 0, 0};
	string message;
	auto code = TryExecute(sql, txn, result, message);
	if (code != OPENDUCK_OK) {
		ThrowError(code, message);
	}
	return result;
}

openduck_result OpenDuckClient::ExecuteIngest(const string &sql, const string &table, ArrowArrayStream &input,
                                              const openduck_txn *txn) const {
	openduck_result result {0, 0, 0, 0};
	openduck_error error {0, nullptr};
	auto code = Api().execute_ingest(session, sql.c_str(), table.c_str(), txn, &input, &result, &error);
	if (code != OPENDUCK_OK) {
		ThrowError(code, TakeMessage(error));
	}
	return result;
}

string OpenDuckClient::NewTransactionId() {
	char id[33] = {0};
	Api().new_txn_id(id);
	return string(id);
}

openduck_stats OpenDuckClient::Stats() const {
	openduck_stats stats {0, 0, 0};
	Api().stats(session, &stats);
	return stats;
}

} // namespace duckdb
