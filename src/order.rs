//! One sort for the whole program. Each use of the standard library's sort with another element
//! type or comparison compiles the sort again, kilobytes of code each; sorting positions through
//! one comparison function compiles it once (what that saved is in docs/footprint.md).

use std::cmp::Ordering;

/// The positions `0..len`, in the order `cmp` puts them; positions that compare equal keep their
/// order (the sort is stable).
pub fn sorted(len: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut positions: Vec<usize> = (0..len).collect();
    positions.sort_by(|&a, &b| cmp(a, b));
    positions
}

/// Sorts `items` by `cmp`, stably.
pub fn sort_by<T>(items: &mut Vec<T>, cmp: impl Fn(&T, &T) -> Ordering) {
    let positions = {
        let items = &*items;
        // `sorted` only hands out positions below `items.len()`, so the `Equal` is never taken;
        // `get` keeps indexing's panic path (and its bytes) out of the binary.
        let at = |i: usize| items.get(i);
        sorted(items.len(), &|a, b| {
            at(a).zip(at(b)).map_or(Ordering::Equal, |(a, b)| cmp(a, b))
        })
    };
    let mut slots: Vec<Option<T>> = std::mem::take(items).into_iter().map(Some).collect();
    items.extend(
        positions
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_stably() {
        let mut items = vec![(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd'), (1, 'e')];
        sort_by(&mut items, |a, b| a.0.cmp(&b.0));
        assert_eq!(items, [(1, 'b'), (1, 'e'), (2, 'd'), (3, 'a'), (3, 'c')]);
        let words = ["b", "a", "c"];
        assert_eq!(sorted(3, &|a, b| words[a].cmp(words[b])), [1, 0, 2]);
        let mut empty: Vec<u8> = Vec::new();
        sort_by(&mut empty, u8::cmp);
        assert!(empty.is_empty());
    }
}
