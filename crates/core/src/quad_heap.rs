//! `QuadHeap`: a 4-ary min-heap.
//!
//! The timer heap's container. Against `std`'s binary heap it halves the depth (log4 n), so a
//! pop — the hot operation when many timers are due — walks half as many levels, and the four
//! children it compares at each level sit next to each other in memory.

/// A min-heap with four children per node: `pop` returns the smallest element.
#[derive(Debug)]
pub(crate) struct QuadHeap<T> {
    items: Vec<T>,
}

impl<T> Default for QuadHeap<T> {
    fn default() -> QuadHeap<T> {
        QuadHeap { items: Vec::new() }
    }
}

impl<T: Ord> QuadHeap<T> {
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The smallest element.
    pub(crate) fn peek(&self) -> Option<&T> {
        self.items.first()
    }

    pub(crate) fn push(&mut self, item: T) {
        self.items.push(item);
        self.sift_up(self.items.len() - 1);
    }

    /// Removes and returns the smallest element.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let last = self.items.pop()?;
        if self.items.is_empty() {
            return Some(last);
        }
        let top = std::mem::replace(&mut self.items[0], last);
        self.sift_down(0);
        Some(top)
    }

    /// Keeps the elements for which `keep` is true (O(n)).
    pub(crate) fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.items.retain(keep);
        for i in (0..self.items.len() / 4 + 1).rev() {
            self.sift_down(i);
        }
    }

    /// Empties the heap, in no particular order.
    pub(crate) fn take(&mut self) -> Vec<T> {
        std::mem::take(&mut self.items)
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 4;
            if self.items[i] >= self.items[parent] {
                break;
            }
            self.items.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let items = &mut self.items[..];
        let n = items.len();
        loop {
            let first = 4 * i + 1;
            let min = if first + 4 <= n {
                // Four children (all but the last node on the bottom level): a tournament of
                // three comparisons, on a slice whose length the compiler knows.
                let kids = &items[first..first + 4];
                let low = if kids[1] < kids[0] { 1 } else { 0 };
                let high = if kids[3] < kids[2] { 3 } else { 2 };
                first + if kids[high] < kids[low] { high } else { low }
            } else if first < n {
                let kids = &items[first..];
                let mut min = 0;
                for c in 1..kids.len() {
                    if kids[c] < kids[min] {
                        min = c;
                    }
                }
                first + min
            } else {
                break;
            };
            if items[min] >= items[i] {
                break;
            }
            items.swap(i, min);
            i = min;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic pseudo-random sequence.
    fn numbers(n: usize) -> Vec<u64> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % 1000
            })
            .collect()
    }

    #[test]
    fn pops_in_ascending_order() {
        let input = numbers(if cfg!(miri) { 200 } else { 5000 });
        let mut heap = QuadHeap::default();
        for &x in &input {
            heap.push(x);
        }
        let mut sorted = input.clone();
        sorted.sort_unstable();
        let popped: Vec<_> = std::iter::from_fn(|| heap.pop()).collect();
        assert_eq!(popped, sorted);
        assert!(heap.is_empty());
    }

    #[test]
    fn retain_keeps_the_heap_order() {
        let input = numbers(if cfg!(miri) { 200 } else { 5000 });
        let mut heap = QuadHeap::default();
        for &x in &input {
            heap.push(x);
        }
        heap.retain(|x| x % 3 != 0);
        let mut expected: Vec<_> = input.into_iter().filter(|x| x % 3 != 0).collect();
        expected.sort_unstable();
        assert_eq!(heap.len(), expected.len());
        assert_eq!(heap.peek(), expected.first());
        let popped: Vec<_> = std::iter::from_fn(|| heap.pop()).collect();
        assert_eq!(popped, expected);
    }
}
