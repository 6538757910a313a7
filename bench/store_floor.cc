// The floor: the durable writes Dray makes for each task, done directly
// against SQLite with ideal batching (one transaction of --batch rows, no
// HTTP, no engine, nothing else on the thread), so that W1 and W2 can be read
// against what the store itself allows on this machine.
//
//   dray_store_floor --tasks 100000 --batch 1000 [--dir /tmp]
//
// Two schemas, each in a fresh file in WAL mode with synchronous=FULL (every
// COMMIT waits for fsync, as in Dray):
// - "dray": Dray's own schema (every migration) and Dray's own statements
//   (store/sqlite/statements.h): insert the row (submit), update it to
//   running (lease), update it to succeeded (ack).
// - "minimal": one table with an integer key, the payload and a state, no
//   secondary index: the cost of SQLite itself.
// Prints one line per phase with rate=<rows/s>, and the lease+ack pair as
// "drain" (tasks/s), the figure W2 compares with.
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include "store/sqlite/migrations.h"
#include "store/sqlite/statements.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  long tasks = 100'000;
  long batch = 1000;
  std::string dir = "/tmp";
};

[[noreturn]] void Die(sqlite3* db, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), db ? sqlite3_errmsg(db) : "?");
  std::exit(1);
}

void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string e = err ? err : "?";
    sqlite3_free(err);
    Die(db, sql.substr(0, 60) + ": " + e);
  }
}

sqlite3_stmt* Prepare(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) Die(db, "prepare " + sql);
  return st;
}

void Step(sqlite3* db, sqlite3_stmt* st) {
  if (sqlite3_step(st) != SQLITE_DONE) Die(db, "step");
  sqlite3_reset(st);
}

// Runs bind+step for rows 0..tasks-1 in transactions of `batch`; rows/s.
double Phase(sqlite3* db, const Options& o, sqlite3_stmt* st,
             const std::function<void(sqlite3_stmt*, long)>& bind) {
  auto start = Clock::now();
  for (long i = 0; i < o.tasks;) {
    Exec(db, "BEGIN IMMEDIATE");
    for (long end = std::min(o.tasks, i + o.batch); i < end; ++i) {
      bind(st, i);
      Step(db, st);
    }
    Exec(db, "COMMIT");  // synchronous=FULL: returns after the WAL is fsynced
  }
  return static_cast<double>(o.tasks) / std::chrono::duration<double>(Clock::now() - start).count();
}

sqlite3* OpenFresh(const std::string& path) {
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) Die(db, "open " + path);
  Exec(db, "PRAGMA journal_mode=WAL");
  Exec(db, "PRAGMA synchronous=FULL");
  return db;
}

void Close(sqlite3* db, const std::string& path) {
  sqlite3_close(db);
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
}

std::string Id(long i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "0193a1b2-c3d4-7e5f-8a9b-%012ld", i);
  return buf;
}

const std::string kPayload =
    R"({"user":12345,"action":"resize","path":"/uploads/2026/11/24/abcdef0123456789.png","size":[640,480]})";

void Text(sqlite3_stmt* st, int col, const std::string& s) {
  sqlite3_bind_text(st, col, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
}

void Report(const char* schema, double insert, double lease, double ack) {
  std::printf("  %-8s insert  rate=%.0f rows/s\n", schema, insert);
  std::printf("  %-8s lease   rate=%.0f rows/s\n", schema, lease);
  std::printf("  %-8s ack     rate=%.0f rows/s\n", schema, ack);
  std::printf("  %-8s drain   rate=%.0f tasks/s (lease + ack)\n", schema, 1.0 / (1.0 / lease + 1.0 / ack));
}

void DraySchema(const Options& o) {
  const std::string path = o.dir + "/dray-floor-" + std::to_string(getpid()) + ".db";
  sqlite3* db = OpenFresh(path);
  Exec(db, "BEGIN");
  for (std::string_view m : dray::SqliteMigrations()) Exec(db, std::string(m));
  Exec(db, "COMMIT");
  sqlite3_stmt* put = Prepare(db, dray::PutTaskSql());
  sqlite3_stmt* live = Prepare(db, dray::kUpdateLiveTask);
  sqlite3_stmt* finish = Prepare(db, dray::kUpdateTask);
  const std::string backoff = R"({"initial_ms":1000,"max_ms":3600000,"multiplier":2.0,"jitter":0.2})";
  double insert = Phase(db, o, put, [&](sqlite3_stmt* st, long i) {
    Text(st, 1, "default");
    Text(st, 2, Id(i));
    Text(st, 3, "bench");
    Text(st, 4, "resize");
    Text(st, 5, kPayload);
    sqlite3_bind_int64(st, 6, 0);
    sqlite3_bind_int64(st, 7, 1'764'000'000'000);
    sqlite3_bind_int64(st, 8, 3);
    Text(st, 9, backoff);
    sqlite3_bind_int64(st, 10, 0);
    sqlite3_bind_int64(st, 11, 0);
    Text(st, 12, "");
    Text(st, 13, "{}");
    sqlite3_bind_int64(st, 14, 3);  // ready
    sqlite3_bind_int64(st, 15, 0);
    Text(st, 16, "");
    Text(st, 17, "");
    sqlite3_bind_int64(st, 18, 1'764'000'000'000);
    sqlite3_bind_int64(st, 19, 1'764'000'000'000);
    sqlite3_bind_int64(st, 20, 0);
    sqlite3_bind_int64(st, 21, 0);
    sqlite3_bind_int64(st, 22, 0);
    Text(st, 23, "");
    sqlite3_bind_int64(st, 24, 0);
    sqlite3_bind_int64(st, 25, i + 1);
    Text(st, 26, "[]");
    Text(st, 27, "");
    Text(st, 28, "");
  });
  auto bind_update = [&](sqlite3_stmt* st, long i, int state, std::int64_t finished,
                         const std::string& history) {
    sqlite3_bind_int64(st, 1, 1'764'000'000'000);
    sqlite3_bind_int64(st, 2, state);
    sqlite3_bind_int64(st, 3, 1);
    Text(st, 4, state == 5 ? "null" : "");
    Text(st, 5, "");
    sqlite3_bind_int64(st, 6, 1'764'000'000'001);
    sqlite3_bind_int64(st, 7, finished);
    sqlite3_bind_int64(st, 8, i + 1);
    sqlite3_bind_int64(st, 9, 1'764'000'030'000);
    Text(st, 10, "bench-0");
    sqlite3_bind_int64(st, 11, 0);
    Text(st, 12, history);
    Text(st, 13, "default");
    Text(st, 14, Id(i));
  };
  const std::string running =
      R"([{"number":1,"worker":"bench-0","started_at":1764000000001,"ended_at":0,"outcome":0,"error":""}])";
  const std::string done =
      R"([{"number":1,"worker":"bench-0","started_at":1764000000001,"ended_at":1764000000002,"outcome":1,"error":""}])";
  double lease = Phase(db, o, live, [&](sqlite3_stmt* st, long i) { bind_update(st, i, 4, 0, running); });
  double ack = Phase(db, o, finish,
                     [&](sqlite3_stmt* st, long i) { bind_update(st, i, 5, 1'764'000'000'002, done); });
  sqlite3_finalize(put);
  sqlite3_finalize(live);
  sqlite3_finalize(finish);
  Close(db, path);
  Report("dray", insert, lease, ack);
}

void MinimalSchema(const Options& o) {
  const std::string path = o.dir + "/minimal-floor-" + std::to_string(getpid()) + ".db";
  sqlite3* db = OpenFresh(path);
  Exec(db, "CREATE TABLE jobs (id INTEGER PRIMARY KEY, payload TEXT NOT NULL, state INTEGER NOT NULL)");
  sqlite3_stmt* put = Prepare(db, "INSERT INTO jobs (id, payload, state) VALUES (?, ?, 3)");
  sqlite3_stmt* set = Prepare(db, "UPDATE jobs SET state = ? WHERE id = ?");
  double insert = Phase(db, o, put, [&](sqlite3_stmt* st, long i) {
    sqlite3_bind_int64(st, 1, i + 1);
    Text(st, 2, kPayload);
  });
  auto update = [&](int state) {
    return Phase(db, o, set, [&](sqlite3_stmt* st, long i) {
      sqlite3_bind_int64(st, 1, state);
      sqlite3_bind_int64(st, 2, i + 1);
    });
  };
  double lease = update(4);
  double ack = update(5);
  sqlite3_finalize(put);
  sqlite3_finalize(set);
  Close(db, path);
  Report("minimal", insert, lease, ack);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--tasks") o.tasks = std::max(1L, std::atol(v.c_str()));
    else if (k == "--batch") o.batch = std::max(1L, std::atol(v.c_str()));
    else if (k == "--dir") o.dir = v;
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  std::printf("Floor: SQLite %s, WAL, synchronous=FULL, %ld tasks, %ld rows per transaction, "
              "~%zu-byte payload, one thread, file in %s, cores=%ld\n",
              sqlite3_libversion(), o.tasks, o.batch, kPayload.size(), o.dir.c_str(),
              sysconf(_SC_NPROCESSORS_ONLN));
  DraySchema(o);
  MinimalSchema(o);
  return 0;
}
