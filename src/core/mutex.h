// A mutex that clang's -Wthread-safety can reason about (leveldb's
// port/thread_annotations.h and util/mutexlock.h). Members a Mutex protects
// are declared DRAY_GUARDED_BY(mu_); functions that expect it held are
// DRAY_REQUIRES(mu_). g++ ignores the annotations.
#pragma once

#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define DRAY_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define DRAY_THREAD_ANNOTATION(x)
#endif

#define DRAY_CAPABILITY(x) DRAY_THREAD_ANNOTATION(capability(x))
#define DRAY_SCOPED_CAPABILITY DRAY_THREAD_ANNOTATION(scoped_lockable)
#define DRAY_GUARDED_BY(x) DRAY_THREAD_ANNOTATION(guarded_by(x))
#define DRAY_PT_GUARDED_BY(x) DRAY_THREAD_ANNOTATION(pt_guarded_by(x))
#define DRAY_REQUIRES(...) DRAY_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define DRAY_EXCLUDES(...) DRAY_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define DRAY_ACQUIRE(...) DRAY_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define DRAY_RELEASE(...) DRAY_THREAD_ANNOTATION(release_capability(__VA_ARGS__))

namespace dray {

class DRAY_CAPABILITY("mutex") Mutex {
 public:
  void Lock() DRAY_ACQUIRE() { mu_.lock(); }
  void Unlock() DRAY_RELEASE() { mu_.unlock(); }
  // For std::condition_variable_any and friends.
  void lock() DRAY_ACQUIRE() { mu_.lock(); }
  void unlock() DRAY_RELEASE() { mu_.unlock(); }
  // Tells the analysis the caller holds it (a lambda run by a holder, which
  // the analysis reads on its own); checks nothing at run time.
  void AssertHeld() const DRAY_THREAD_ANNOTATION(assert_capability(this)) {}

 private:
  std::mutex mu_;
};

// Holds a Mutex for the life of the scope.
class DRAY_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) DRAY_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() DRAY_RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace dray
