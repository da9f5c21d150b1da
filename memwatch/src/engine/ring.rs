//! A fixed-capacity ring: the newest `capacity` items, oldest dropped first.
//!
//! Every per-target history is one of these, so a target costs the same
//! memory after a minute as after a month.
use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub struct Ring<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T> Ring<T> {
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a ring holds at least one item");
        // Grown as items come, not reserved: a target seen once costs a few
        // bytes, not its whole history's worth.
        Self { items: VecDeque::new(), capacity }
    }

    pub fn push(&mut self, item: T) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.items.iter()
    }

    pub fn newest(&self) -> Option<&T> {
        self.items.back()
    }

    /// The item at `index`, oldest first.
    pub fn get(&self, index: usize) -> Option<&T> {
        self.items.get(index)
    }

    /// The item `back` places before the newest (0 is the newest).
    pub fn back(&self, back: usize) -> Option<&T> {
        self.items.len().checked_sub(back + 1).and_then(|i| self.items.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_newest_items() {
        let mut ring = Ring::new(3);
        for i in 0..5 {
            ring.push(i);
        }
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(ring.len(), ring.capacity());
        assert_eq!(ring.newest(), Some(&4));
        assert_eq!(ring.back(2), Some(&2));
        assert_eq!(ring.back(3), None);
    }
}
