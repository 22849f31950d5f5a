//! A tiny slab: a `Vec` of slots plus a free list, keyed by `usize`.
//!
//! The reactor keys its sources by slot index, and that index is the key the
//! poller reports back with each event.

/// Slots addressed by a stable `usize` key; freed keys are reused.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// The key the next [`insert`](Self::insert) will use.
    pub(crate) fn next_key(&self) -> usize {
        self.free.last().copied().unwrap_or(self.slots.len())
    }

    /// Stores `value` at [`next_key`](Self::next_key) and returns that key.
    pub(crate) fn insert(&mut self, value: T) -> usize {
        self.len += 1;
        match self.free.pop() {
            Some(key) => {
                debug_assert!(self.slots[key].is_none(), "free list points at a full slot");
                self.slots[key] = Some(value);
                key
            }
            None => {
                self.slots.push(Some(value));
                self.slots.len() - 1
            }
        }
    }

    /// The value at `key`, if any.
    pub(crate) fn get(&self, key: usize) -> Option<&T> {
        self.slots.get(key).and_then(Option::as_ref)
    }

    /// Removes and returns the value at `key` if `pred` accepts it.
    pub(crate) fn remove_if(&mut self, key: usize, pred: impl FnOnce(&T) -> bool) -> Option<T> {
        let slot = self.slots.get_mut(key)?;
        if !slot.as_ref().is_some_and(pred) {
            return None;
        }
        let value = slot.take();
        self.free.push(key);
        self.len -= 1;
        value
    }

    /// The values, in key order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }

    /// Number of stored values.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Removes and returns every stored value, leaving the slab empty.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        self.free.clear();
        self.len = 0;
        std::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn insert_get_remove_reuse() {
        let mut slab = Slab::default();
        assert_eq!(slab.next_key(), 0);
        let a = slab.insert("a");
        let b = slab.insert("b");
        assert_eq!((a, b), (0, 1));
        assert_eq!(slab.len(), 2);
        assert_eq!(slab.get(a), Some(&"a"));
        assert_eq!(slab.get(7), None);

        assert_eq!(slab.remove_if(a, |_| true), Some("a"));
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.len(), 1);
        // Removing twice does nothing.
        assert_eq!(slab.remove_if(a, |_| true), None);
        assert_eq!(slab.len(), 1);

        // The freed key is reused first.
        assert_eq!(slab.next_key(), a);
        assert_eq!(slab.insert("c"), a);
        assert_eq!(slab.next_key(), 2);
        assert_eq!(slab.len(), 2);
    }

    #[test]
    fn remove_if_respects_predicate() {
        let mut slab = Slab::default();
        let k = slab.insert(5);
        assert_eq!(slab.remove_if(k, |v| *v == 6), None);
        assert_eq!(slab.get(k), Some(&5));
        assert_eq!(slab.remove_if(k, |v| *v == 5), Some(5));
    }

    #[test]
    fn drain_empties() {
        let mut slab = Slab::default();
        for i in 0..10 {
            slab.insert(i);
        }
        slab.remove_if(3, |_| true);
        let mut all = slab.drain();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2, 4, 5, 6, 7, 8, 9]);
        assert_eq!(slab.len(), 0);
        assert_eq!(slab.next_key(), 0);
    }
}
