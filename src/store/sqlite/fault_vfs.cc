#include "store/sqlite/fault_vfs.h"

#include <algorithm>
#include <cstdint>
#include <new>
#include <set>
#include <vector>

namespace dray {

namespace {

// What to write back to undo one unsynced change.
struct Undo {
  sqlite3_int64 offset;
  std::string old_bytes;
};

constexpr std::size_t RoundUp8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

}  // namespace

// What a crash would lose of one file, shared by every handle SQLite has
// open on it (the writer and the reader connection each open the database
// and the WAL): an fsync through any handle makes the file durable.
struct FaultVfs::FileState {
  // The size at first open or at the last successful sync, and how to undo
  // every write since: only bytes below synced_size need remembering, since
  // a crash cuts the file back to synced_size anyway.
  sqlite3_int64 synced_size = 0;
  std::vector<Undo> undo;
  std::set<File*> handles;

  // Remembers bytes [from, to) as they are now, clipped to the synced size.
  void Save(sqlite3_file* real, sqlite3_int64 from, sqlite3_int64 to) {
    to = std::min(to, synced_size);
    if (from >= to) return;
    std::string old(static_cast<std::size_t>(to - from), '\0');
    // A short read fills the rest with zeros, which is what a later
    // extension of a truncated file reads back; earlier undo records (applied
    // after this one) restore the real bytes.
    real->pMethods->xRead(real, old.data(), static_cast<int>(old.size()), from);
    undo.push_back(Undo{from, std::move(old)});
  }

  // Puts the file back as it was at synced_size.
  void RollBack(sqlite3_file* real) {
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
      real->pMethods->xWrite(real, it->old_bytes.data(), static_cast<int>(it->old_bytes.size()),
                             it->offset);
    }
    real->pMethods->xTruncate(real, synced_size);
    undo.clear();
  }
};

// SQLite allocates szOsFile bytes per open file; we placement-construct a
// File at the front and hand the wrapped VFS the bytes after it.
struct FaultVfs::File {
  sqlite3_file base;  // first, so that SQLite's sqlite3_file* is a File*
  FaultVfs* owner;
  sqlite3_file* real;
  std::string key;               // the path, or a unique name for a temp file
  FileState* state = nullptr;    // owned by owner->states_, under owner->mu_
};

// The io_methods of a File: each forwards to the wrapped file, recording
// what a crash would lose.
struct FileMethods {
  using File = FaultVfs::File;
  static File* F(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
  static sqlite3_file* R(sqlite3_file* f) { return F(f)->real; }

  static int Close(sqlite3_file* f) {
    File* file = F(f);
    file->owner->Untrack(file);
    int rc = file->real->pMethods->xClose(file->real);
    file->~File();
    return rc;
  }
  static int Read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
    return R(f)->pMethods->xRead(R(f), buf, n, off);
  }
  static int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
    File* file = F(f);
    MutexLock lock(&file->owner->mu_);
    if (file->owner->dead()) return SQLITE_OK;
    file->state->Save(file->real, off, off + n);
    return file->real->pMethods->xWrite(file->real, buf, n, off);
  }
  static int Truncate(sqlite3_file* f, sqlite3_int64 size) {
    File* file = F(f);
    MutexLock lock(&file->owner->mu_);
    if (file->owner->dead()) return SQLITE_OK;
    file->state->Save(file->real, size, file->state->synced_size);
    return file->real->pMethods->xTruncate(file->real, size);
  }
  static int Sync(sqlite3_file* f, int flags) {
    File* file = F(f);
    if (file->owner->dead()) return SQLITE_OK;
    if (file->owner->TakeSyncFault()) return SQLITE_IOERR_FSYNC;
    int rc = file->real->pMethods->xSync(file->real, flags);
    if (rc != SQLITE_OK) return rc;
    MutexLock lock(&file->owner->mu_);
    sqlite3_int64 size = 0;
    rc = file->real->pMethods->xFileSize(file->real, &size);
    file->state->synced_size = size;
    file->state->undo.clear();
    return rc;
  }
  static int FileSize(sqlite3_file* f, sqlite3_int64* size) {
    return R(f)->pMethods->xFileSize(R(f), size);
  }
  static int Lock(sqlite3_file* f, int level) { return R(f)->pMethods->xLock(R(f), level); }
  static int Unlock(sqlite3_file* f, int level) { return R(f)->pMethods->xUnlock(R(f), level); }
  static int CheckReservedLock(sqlite3_file* f, int* out) {
    return R(f)->pMethods->xCheckReservedLock(R(f), out);
  }
  static int FileControl(sqlite3_file* f, int op, void* arg) {
    return R(f)->pMethods->xFileControl(R(f), op, arg);
  }
  static int SectorSize(sqlite3_file* f) { return R(f)->pMethods->xSectorSize(R(f)); }
  static int DeviceCharacteristics(sqlite3_file* f) {
    return R(f)->pMethods->xDeviceCharacteristics(R(f));
  }
  static int ShmMap(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
    return R(f)->pMethods->xShmMap(R(f), page, size, extend, out);
  }
  static int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
    return R(f)->pMethods->xShmLock(R(f), offset, n, flags);
  }
  static void ShmBarrier(sqlite3_file* f) { R(f)->pMethods->xShmBarrier(R(f)); }
  static int ShmUnmap(sqlite3_file* f, int delete_flag) {
    return R(f)->pMethods->xShmUnmap(R(f), delete_flag);
  }

  // Version 2: shared memory (WAL) but no xFetch, so SQLite never maps the
  // database and every write passes through Write() above.
  static constexpr sqlite3_io_methods kMethods = {
      2,        Close,    Read,     Write,      Truncate, Sync,     FileSize,
      Lock,     Unlock,   CheckReservedLock,    FileControl,        SectorSize,
      DeviceCharacteristics,        ShmMap,     ShmLock,  ShmBarrier, ShmUnmap,
      nullptr,  nullptr};
};

StatusOr<std::unique_ptr<FaultVfs>> FaultVfs::Register(const std::string& name, const char* base) {
  if (sqlite3_vfs_find(name.c_str()) != nullptr) {
    return AlreadyExists("a SQLite VFS called '" + name + "' is already registered");
  }
  sqlite3_vfs* real = sqlite3_vfs_find(base);
  if (real == nullptr) {
    return NotFound(std::string("no SQLite VFS called '") + (base ? base : "(default)") + "'");
  }
  std::unique_ptr<FaultVfs> self(new FaultVfs());
  self->name_ = name;
  self->base_ = real;
  sqlite3_vfs& v = self->vfs_;
  v.iVersion = std::min(real->iVersion, 3);
  v.szOsFile = static_cast<int>(RoundUp8(sizeof(File)) + static_cast<std::size_t>(real->szOsFile));
  v.mxPathname = real->mxPathname;
  v.zName = self->name_.c_str();
  v.pAppData = self.get();
  v.xOpen = Open;
  v.xDelete = Delete;
  v.xAccess = [](sqlite3_vfs* vfs, const char* n, int flags, int* out) {
    return Self(vfs)->base_->xAccess(Self(vfs)->base_, n, flags, out);
  };
  v.xFullPathname = [](sqlite3_vfs* vfs, const char* n, int size, char* out) {
    return Self(vfs)->base_->xFullPathname(Self(vfs)->base_, n, size, out);
  };
  v.xDlOpen = [](sqlite3_vfs* vfs, const char* n) { return Self(vfs)->base_->xDlOpen(Self(vfs)->base_, n); };
  v.xDlError = [](sqlite3_vfs* vfs, int n, char* out) { Self(vfs)->base_->xDlError(Self(vfs)->base_, n, out); };
  v.xDlSym = [](sqlite3_vfs* vfs, void* h, const char* sym) {
    return Self(vfs)->base_->xDlSym(Self(vfs)->base_, h, sym);
  };
  v.xDlClose = [](sqlite3_vfs* vfs, void* h) { Self(vfs)->base_->xDlClose(Self(vfs)->base_, h); };
  v.xRandomness = [](sqlite3_vfs* vfs, int n, char* out) {
    return Self(vfs)->base_->xRandomness(Self(vfs)->base_, n, out);
  };
  v.xSleep = [](sqlite3_vfs* vfs, int us) { return Self(vfs)->base_->xSleep(Self(vfs)->base_, us); };
  v.xCurrentTime = [](sqlite3_vfs* vfs, double* out) {
    return Self(vfs)->base_->xCurrentTime(Self(vfs)->base_, out);
  };
  v.xGetLastError = [](sqlite3_vfs* vfs, int n, char* out) {
    return Self(vfs)->base_->xGetLastError(Self(vfs)->base_, n, out);
  };
  if (v.iVersion >= 2) {
    v.xCurrentTimeInt64 = [](sqlite3_vfs* vfs, sqlite3_int64* out) {
      return Self(vfs)->base_->xCurrentTimeInt64(Self(vfs)->base_, out);
    };
  }
  if (v.iVersion >= 3) {
    v.xSetSystemCall = [](sqlite3_vfs* vfs, const char* n, sqlite3_syscall_ptr p) {
      return Self(vfs)->base_->xSetSystemCall(Self(vfs)->base_, n, p);
    };
    v.xGetSystemCall = [](sqlite3_vfs* vfs, const char* n) {
      return Self(vfs)->base_->xGetSystemCall(Self(vfs)->base_, n);
    };
    v.xNextSystemCall = [](sqlite3_vfs* vfs, const char* n) {
      return Self(vfs)->base_->xNextSystemCall(Self(vfs)->base_, n);
    };
  }
  int rc = sqlite3_vfs_register(&v, /*makeDflt=*/0);
  if (rc != SQLITE_OK) {
    return Internal("registering SQLite VFS '" + name + "': " + sqlite3_errstr(rc));
  }
  return self;
}

FaultVfs::~FaultVfs() { sqlite3_vfs_unregister(&vfs_); }

int FaultVfs::Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  FaultVfs* self = Self(vfs);
  f->pMethods = nullptr;  // until the wrapped open succeeds: SQLite skips xClose
  auto* real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + RoundUp8(sizeof(File)));
  real->pMethods = nullptr;
  int rc = self->base_->xOpen(self->base_, name, real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (real->pMethods != nullptr) real->pMethods->xClose(real);
    return rc;
  }
  std::string key = name ? std::string(name) : "temp:" + std::to_string(reinterpret_cast<std::uintptr_t>(f));
  File* file = new (f) File{sqlite3_file{&FileMethods::kMethods}, self, real, std::move(key)};
  self->Track(file);
  return SQLITE_OK;
}

int FaultVfs::Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  FaultVfs* self = Self(vfs);
  if (self->dead()) return SQLITE_OK;
  return self->base_->xDelete(self->base_, name, sync_dir);
}

bool FaultVfs::TakeSyncFault() {
  const std::uint64_t n = sync_calls_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (const std::uint64_t at = crash_at_.load(std::memory_order_acquire); at != 0 && n == at) {
    SimulateCrash();
    crash_then_();  // normally does not return
    failed_syncs_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  const std::uint64_t from = fail_from_.load(std::memory_order_relaxed);
  bool fail = fail_all_.load(std::memory_order_relaxed) || (from != 0 && n >= from) ||
              fail_next_.exchange(false, std::memory_order_relaxed);
  (fail ? failed_syncs_ : syncs_).fetch_add(1, std::memory_order_relaxed);
  return fail;
}

void FaultVfs::Track(File* f) {
  MutexLock lock(&mu_);
  std::unique_ptr<FileState>& state = states_[f->key];
  if (!state) {
    state = std::make_unique<FileState>();
    // What is on disk when the file is first opened counts as synced.
    f->real->pMethods->xFileSize(f->real, &state->synced_size);
  }
  state->handles.insert(f);
  f->state = state.get();
}

// The last close forgets the file, unsynced writes and all: the crash model
// covers open files only (see the header).
void FaultVfs::Untrack(File* f) {
  MutexLock lock(&mu_);
  f->state->handles.erase(f);
  if (f->state->handles.empty()) states_.erase(f->key);
  f->state = nullptr;
}

void FaultVfs::SimulateCrash() {
  MutexLock lock(&mu_);
  for (auto& [key, state] : states_) state->RollBack((*state->handles.begin())->real);
  dead_.store(true, std::memory_order_release);
}

void FaultVfs::Reset() {
  MutexLock lock(&mu_);
  dead_.store(false, std::memory_order_release);
  fail_next_.store(false, std::memory_order_relaxed);
  fail_all_.store(false, std::memory_order_relaxed);
  fail_from_.store(0, std::memory_order_relaxed);
  crash_at_.store(0, std::memory_order_relaxed);
}

}  // namespace dray
