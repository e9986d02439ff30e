#include "support/sync_counting_vfs.hpp"

#include <sqlite3.h>

#include <cstring>
#include <memory>
#include <stdexcept>

namespace scrapekeep::testing {

// Our header, then the inner VFS's file (szOsFile is the sum of both).
struct SyncCountingFile {
  sqlite3_file base;
  sqlite3_file* inner;
  SyncCountingVfs* owner;
  bool wal;
};

namespace {

SyncCountingFile* outer(sqlite3_file* f) {
  return reinterpret_cast<SyncCountingFile*>(f);
}
sqlite3_file* inner(sqlite3_file* f) {
  return outer(f)->inner;
}

int x_close(sqlite3_file* f) {
  return inner(f)->pMethods->xClose(inner(f));
}
int x_read(sqlite3_file* f, void* b, int n, sqlite3_int64 o) {
  return inner(f)->pMethods->xRead(inner(f), b, n, o);
}
int x_write(sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
  return inner(f)->pMethods->xWrite(inner(f), b, n, o);
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  return inner(f)->pMethods->xTruncate(inner(f), size);
}
int x_sync(sqlite3_file* f, int flags);
int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return inner(f)->pMethods->xFileSize(inner(f), size);
}
int x_lock(sqlite3_file* f, int l) {
  return inner(f)->pMethods->xLock(inner(f), l);
}
int x_unlock(sqlite3_file* f, int l) {
  return inner(f)->pMethods->xUnlock(inner(f), l);
}
int x_check_reserved(sqlite3_file* f, int* out) {
  return inner(f)->pMethods->xCheckReservedLock(inner(f), out);
}
int x_file_control(sqlite3_file* f, int op, void* arg) {
  return inner(f)->pMethods->xFileControl(inner(f), op, arg);
}
int x_sector_size(sqlite3_file* f) {
  return inner(f)->pMethods->xSectorSize(inner(f));
}
int x_device(sqlite3_file* f) {
  return inner(f)->pMethods->xDeviceCharacteristics(inner(f));
}
int x_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return inner(f)->pMethods->xShmMap(inner(f), region, size, extend, out);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return inner(f)->pMethods->xShmLock(inner(f), offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) {
  inner(f)->pMethods->xShmBarrier(inner(f));
}
int x_shm_unmap(sqlite3_file* f, int remove) {
  return inner(f)->pMethods->xShmUnmap(inner(f), remove);
}
int x_fetch(sqlite3_file* f, sqlite3_int64 o, int n, void** out) {
  return inner(f)->pMethods->xFetch(inner(f), o, n, out);
}
int x_unfetch(sqlite3_file* f, sqlite3_int64 o, void* p) {
  return inner(f)->pMethods->xUnfetch(inner(f), o, p);
}

const sqlite3_io_methods k_methods = {3,           x_close,          x_read,         x_write,
                                      x_truncate,  x_sync,           x_file_size,    x_lock,
                                      x_unlock,    x_check_reserved, x_file_control, x_sector_size,
                                      x_device,    x_shm_map,        x_shm_lock,     x_shm_barrier,
                                      x_shm_unmap, x_fetch,          x_unfetch};

int x_open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* self = static_cast<SyncCountingVfs*>(vfs->pAppData);
  auto* wrapped = outer(f);
  std::memset(wrapped, 0, sizeof(SyncCountingFile));
  wrapped->inner = reinterpret_cast<sqlite3_file*>(wrapped + 1);
  wrapped->owner = self;
  const std::size_t length = name != nullptr ? std::strlen(name) : 0;
  wrapped->wal = length >= 4 && std::strcmp(name + length - 4, "-wal") == 0;
  sqlite3_vfs* base = self->inner();
  const int rc = base->xOpen(base, name, wrapped->inner, flags, out_flags);
  // SQLite calls xClose only on a file whose pMethods is set.
  wrapped->base.pMethods = wrapped->inner->pMethods != nullptr ? &k_methods : nullptr;
  return rc;
}

int x_sync(sqlite3_file* f, int flags) {
  if (outer(f)->wal && !outer(f)->owner->count_wal_sync()) {
    return SQLITE_IOERR_FSYNC;
  }
  return inner(f)->pMethods->xSync(inner(f), flags);
}

sqlite3_vfs* inner_vfs(sqlite3_vfs* v) {
  return static_cast<SyncCountingVfs*>(v->pAppData)->inner();
}

// The calls that name files go to the inner VFS with its own pointer.
int x_delete(sqlite3_vfs* v, const char* n, int d) {
  return inner_vfs(v)->xDelete(inner_vfs(v), n, d);
}
int x_access(sqlite3_vfs* v, const char* n, int flags, int* out) {
  return inner_vfs(v)->xAccess(inner_vfs(v), n, flags, out);
}
int x_full_pathname(sqlite3_vfs* v, const char* n, int size, char* out) {
  return inner_vfs(v)->xFullPathname(inner_vfs(v), n, size, out);
}

}  // namespace

SyncCountingVfs::SyncCountingVfs() : m_inner(sqlite3_vfs_find(nullptr)) {
  if (m_inner == nullptr) {
    throw std::runtime_error("no default SQLite VFS");
  }
  // The inner VFS's other calls (time, randomness, sleep) as they are: the
  // unix VFS's do not use the pointer they are given.
  m_vfs = new sqlite3_vfs(*m_inner);
  m_vfs->szOsFile = static_cast<int>(sizeof(SyncCountingFile)) + m_inner->szOsFile;
  m_vfs->zName = "scrapekeep-sync-counting";
  m_vfs->pAppData = this;
  m_vfs->xOpen = x_open;
  m_vfs->xDelete = x_delete;
  m_vfs->xAccess = x_access;
  m_vfs->xFullPathname = x_full_pathname;
  if (sqlite3_vfs_register(m_vfs, 1) != SQLITE_OK) {
    delete m_vfs;
    throw std::runtime_error("cannot register the counting VFS");
  }
}

SyncCountingVfs::~SyncCountingVfs() {
  sqlite3_vfs_unregister(m_vfs);
  sqlite3_vfs_register(m_inner, 1);
  delete m_vfs;
}

}  // namespace scrapekeep::testing
