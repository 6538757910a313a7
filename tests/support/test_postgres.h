// For tests: a database of its own on the test PostgreSQL server, which
// ctest starts once per run (scripts/test-postgres.sh, a fixture in
// tests/CMakeLists.txt). The server is named by DRAY_TEST_PG (a libpq
// connection string) or by the file DRAY_TEST_PG_FILE names; with neither,
// there is no server and the PostgreSQL tests skip.
//
// With DRAY_TEST_STORE=postgres (or postgres:FILE, FILE naming the server
// as DRAY_TEST_PG_FILE does), every `dray server` a test starts
// (ServerProcess) stores in a database of its own on that server: ctest
// runs the store-independent black-box tests a second time that way.
#pragma once

#include <libpq-fe.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <string>

namespace dray::testing_pg {

// The test server's connection string, or "" when there is none.
inline std::string ServerConninfo() {
  if (const char* c = std::getenv("DRAY_TEST_PG"); c && *c) return c;
  if (const char* f = std::getenv("DRAY_TEST_PG_FILE"); f && *f) {
    std::ifstream in(f);
    std::string line;
    if (std::getline(in, line)) return line;
  }
  if (const char* s = std::getenv("DRAY_TEST_STORE"); s && std::string(s).rfind("postgres:", 0) == 0) {
    std::ifstream in(s + 9);
    std::string line;
    if (std::getline(in, line)) return line;
  }
  return "";
}

// Runs SQL on the database `conninfo` names; "" or libpq's message.
inline std::string Exec(const std::string& conninfo, const std::string& sql) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  std::string error;
  if (PQstatus(c) != CONNECTION_OK) {
    error = PQerrorMessage(c);
  } else {
    PGresult* r = PQexec(c, sql.c_str());
    const ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) error = PQresultErrorMessage(r);
    PQclear(r);
  }
  PQfinish(c);
  return error;
}

// Runs one statement on the server's maintenance database.
inline std::string AdminExec(const std::string& sql) { return Exec(ServerConninfo(), sql); }

// A database name made from `key` (say, a temp dir's path): the same key
// gives the same database.
inline std::string DatabaseName(const std::string& key) {
  std::string name = "dray_t_";
  std::size_t start = key.find_last_of('/');
  for (char ch : key.substr(start == std::string::npos ? 0 : start + 1)) {
    name += std::isalnum(static_cast<unsigned char>(ch))
                ? static_cast<char>(std::tolower(static_cast<unsigned char>(ch)))
                : '_';
  }
  return name;
}

// Creates the database for `key` if it is not there; returns its
// connection string, or "" (with *error set) on failure.
inline std::string CreateDatabase(const std::string& key, std::string* error) {
  const std::string name = DatabaseName(key);
  std::string e = AdminExec("CREATE DATABASE " + name);
  if (!e.empty() && e.find("already exists") == std::string::npos) {
    *error = e;
    return "";
  }
  // A keyword given twice: libpq takes the last.
  return ServerConninfo() + " dbname=" + name;
}

// The database for `key` as a URL for `dray server --store`
// (postgresql://user@host:port/name), from the server's connection string
// (keyword=value pairs without quotes, as scripts/test-postgres.sh writes
// it); "" when there is no server.
inline std::string DatabaseUrl(const std::string& key) {
  const std::string conninfo = ServerConninfo();
  if (conninfo.empty()) return "";
  std::string host = "127.0.0.1", port = "5432", user;
  std::size_t at = 0;
  while (at < conninfo.size()) {
    std::size_t end = conninfo.find(' ', at);
    if (end == std::string::npos) end = conninfo.size();
    const std::string pair = conninfo.substr(at, end - at);
    at = end + 1;
    const std::size_t eq = pair.find('=');
    if (eq == std::string::npos) continue;
    const std::string k = pair.substr(0, eq), v = pair.substr(eq + 1);
    if (k == "host") host = v;
    if (k == "port") port = v;
    if (k == "user") user = v;
  }
  return "postgresql://" + (user.empty() ? "" : user + "@") + host + ":" + port + "/" +
         DatabaseName(key);
}

inline void DropDatabase(const std::string& key) {
  AdminExec("DROP DATABASE IF EXISTS " + DatabaseName(key) + " WITH (FORCE)");
}

}  // namespace dray::testing_pg
