//! An episode's records, the newest of them: a target held at critical for
//! days gets a cleanup procedure every cooldown, and its open episode (and
//! the incident line it becomes) must not grow with it.
use std::collections::VecDeque;

/// How many action records, and level changes, an episode keeps.
pub const KEPT: usize = 1000;

/// The newest [`KEPT`] items pushed, each found by the index `push` gave it
/// however many older ones were dropped since.
#[derive(Debug, Clone, PartialEq)]
pub struct Newest<T> {
    dropped: usize,
    kept: VecDeque<T>,
}

impl<T> Default for Newest<T> {
    fn default() -> Self {
        Self { dropped: 0, kept: VecDeque::new() }
    }
}

impl<T> Newest<T> {
    /// Appends `item`, dropping the oldest beyond [`KEPT`]; its index.
    pub fn push(&mut self, item: T) -> usize {
        if self.kept.len() == KEPT {
            self.kept.pop_front();
            self.dropped += 1;
        }
        self.kept.push_back(item);
        self.next_index() - 1
    }

    /// The index the next `push` will return.
    pub fn next_index(&self) -> usize {
        self.dropped + self.kept.len()
    }

    /// The item pushed at `index`, unless it was dropped since.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.kept.get_mut(index.checked_sub(self.dropped)?)
    }

    /// How many of the oldest were dropped.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.kept.iter()
    }
}

impl<T> FromIterator<T> for Newest<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut newest = Self::default();
        for item in items {
            newest.push(item);
        }
        newest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_outlive_the_items_dropped_before_them() {
        let mut records: Newest<usize> = Newest::default();
        for i in 0..KEPT + 5 {
            assert_eq!(records.push(i), i);
        }
        assert_eq!((records.dropped(), records.iter().count()), (5, KEPT));
        assert_eq!(records.get_mut(4), None, "dropped");
        assert_eq!(records.get_mut(5).copied(), Some(5));
        assert_eq!(records.get_mut(KEPT + 4).copied(), Some(KEPT + 4));
        assert_eq!(records.get_mut(KEPT + 5), None, "not pushed yet");
        assert_eq!(records.next_index(), KEPT + 5);
    }
}
