// A binary min-heap whose items know their position, so that an item can be
// removed or re-keyed in O(log n) (beanstalkd heap.c). Items are pointers;
// each item stores its own index through the PosOf functor (kNotInHeap when
// it is not in this heap). Positions are 32-bit, to keep items small: a heap
// holds fewer than 2^32 - 1 items. Not thread-safe: the engine's lock covers
// it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace dray {

using HeapPos = std::uint32_t;
inline constexpr HeapPos kNotInHeap = static_cast<HeapPos>(-1);

// Less(a, b): a comes out before b. PosOf(item) -> HeapPos&.
template <typename T, typename Less, typename PosOf>
class IndexedHeap {
 public:
  explicit IndexedHeap(Less less = Less(), PosOf pos = PosOf()) : less_(less), pos_(pos) {}

  bool empty() const { return items_.empty(); }
  std::size_t size() const { return items_.size(); }
  T* top() const { return items_.empty() ? nullptr : items_.front(); }
  bool contains(T* item) const { return pos_(item) != kNotInHeap; }

  void push(T* item) {
    pos_(item) = static_cast<HeapPos>(items_.size());
    items_.push_back(item);
    SiftUp(items_.size() - 1);
  }

  T* pop() {
    T* item = items_.front();
    erase(item);
    return item;
  }

  // Removes `item` if it is in the heap.
  void erase(T* item) {
    std::size_t i = pos_(item);
    if (i == kNotInHeap) return;
    std::size_t last = items_.size() - 1;
    if (i != last) {
      Place(i, items_[last]);
      items_.pop_back();
      // The moved item may belong above or below its new place.
      if (!SiftUp(i)) SiftDown(i);
    } else {
      items_.pop_back();
    }
    pos_(item) = kNotInHeap;
  }

  // Restores order after `item`'s key changed (or inserts it).
  void update(T* item) {
    std::size_t i = pos_(item);
    if (i == kNotInHeap) {
      push(item);
      return;
    }
    if (!SiftUp(i)) SiftDown(i);
  }

  // Items in heap order (not sorted), for iteration.
  const std::vector<T*>& items() const { return items_; }

 private:
  void Place(std::size_t i, T* item) {
    items_[i] = item;
    pos_(item) = static_cast<HeapPos>(i);
  }

  bool SiftUp(std::size_t i) {
    bool moved = false;
    T* item = items_[i];
    while (i > 0) {
      std::size_t parent = (i - 1) / 2;
      if (!less_(item, items_[parent])) break;
      Place(i, items_[parent]);
      i = parent;
      moved = true;
    }
    Place(i, item);
    return moved;
  }

  void SiftDown(std::size_t i) {
    T* item = items_[i];
    const std::size_t n = items_.size();
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && less_(items_[child + 1], items_[child])) ++child;
      if (!less_(items_[child], item)) break;
      Place(i, items_[child]);
      i = child;
    }
    Place(i, item);
  }

  std::vector<T*> items_;
  Less less_;
  PosOf pos_;
};

}  // namespace dray
