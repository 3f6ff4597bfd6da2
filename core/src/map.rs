//! [`SortedMap`]: string keys in byte (so code point) order, over a
//! sorted `Vec`: the map of JSON objects, typed parameters and status
//! details. It iterates and serializes exactly as `BTreeMap<String, V>`
//! does, with a fraction of its code in the browser build (one small
//! generic type instead of a B-tree per value type). Pure, no I/O.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::marker::PhantomData;

/// A device's free-form progress strings (AWS IoT Jobs' `statusDetails`).
pub type StatusDetails = SortedMap<String>;

/// A map from strings to `V`, kept sorted by key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SortedMap<V> {
    entries: Vec<(String, V)>,
}

impl<V> Default for SortedMap<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> SortedMap<V> {
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Where `key` is, or where it would go.
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key`, returning the value it replaced.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> Iter<'_, V> {
        Iter(self.entries.iter())
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn into_keys(self) -> impl Iterator<Item = String> {
        self.entries.into_iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    /// A map of `pairs` in any order; of repeated keys, the last wins (as
    /// JSON readers and `BTreeMap::from_iter` do).
    pub fn from_pairs(mut pairs: Vec<(String, V)>) -> Self {
        if pairs.windows(2).any(|w| w[0].0 >= w[1].0) {
            let order = sorted_order(&pairs.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>());
            let mut slots: Vec<Option<(String, V)>> = pairs.into_iter().map(Some).collect();
            pairs = Vec::with_capacity(slots.len());
            for i in order {
                if let Some(pair) = slots[i].take() {
                    match pairs.last_mut() {
                        Some(last) if last.0 == pair.0 => *last = pair,
                        _ => pairs.push(pair),
                    }
                }
            }
        }
        Self { entries: pairs }
    }
}

/// The indices of `keys` in key order, equal keys in their original order.
fn sorted_order(keys: &[&str]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|a, b| keys[*a].cmp(keys[*b]));
    order
}

/// Iterates a [`SortedMap`] in key order, as `(&key, &value)`.
#[derive(Debug, Clone)]
pub struct Iter<'a, V>(std::slice::Iter<'a, (String, V)>);

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a String, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<V> DoubleEndedIterator for Iter<'_, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl<V> ExactSizeIterator for Iter<'_, V> {}

impl<'a, V> IntoIterator for &'a SortedMap<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = Iter<'a, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<V> IntoIterator for SortedMap<V> {
    type Item = (String, V);
    type IntoIter = std::vec::IntoIter<(String, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<V> FromIterator<(String, V)> for SortedMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(pairs: I) -> Self {
        Self::from_pairs(pairs.into_iter().collect())
    }
}

impl<V, const N: usize> From<[(String, V); N]> for SortedMap<V> {
    fn from(pairs: [(String, V); N]) -> Self {
        Self::from_pairs(Vec::from(pairs))
    }
}

impl<V> Extend<(String, V)> for SortedMap<V> {
    fn extend<I: IntoIterator<Item = (String, V)>>(&mut self, pairs: I) {
        for (k, v) in pairs {
            self.insert(k, v);
        }
    }
}

impl<V> std::ops::Index<&str> for SortedMap<V> {
    type Output = V;

    /// # Panics
    /// When `key` is absent, as `BTreeMap`'s index does (tests use it).
    fn index(&self, key: &str) -> &V {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no key {key:?} in the map"),
        }
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for SortedMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: Serialize> Serialize for SortedMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for SortedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = SortedMap<V>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::with_capacity(access.size_hint().unwrap_or(0).min(4096));
                while let Some(pair) = access.next_entry()? {
                    pairs.push(pair);
                }
                Ok(SortedMap::from_pairs(pairs))
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::SortedMap;

    #[test]
    fn keeps_keys_in_byte_order_and_the_last_of_repeated_keys() {
        let map = SortedMap::from_pairs(vec![
            ("b".to_owned(), 1),
            ("é".to_owned(), 2),
            ("a".to_owned(), 3),
            ("b".to_owned(), 4),
            ("Z".to_owned(), 5),
        ]);
        let pairs: Vec<(&str, i32)> = map.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(pairs, [("Z", 5), ("a", 3), ("b", 4), ("é", 2)]);
    }

    #[test]
    fn insert_get_remove() {
        let mut map = SortedMap::new();
        assert_eq!(map.insert("m".to_owned(), 1), None);
        assert_eq!(map.insert("a".to_owned(), 2), None);
        assert_eq!(map.insert("m".to_owned(), 3), Some(1));
        assert_eq!(map.get("m"), Some(&3));
        assert_eq!(map.keys().collect::<Vec<_>>(), ["a", "m"]);
        assert_eq!(map.remove("a"), Some(2));
        assert_eq!(map.len(), 1);
        assert!(!map.contains_key("a"));
    }

    #[test]
    fn iterates_as_a_btree_map_does() {
        let keys = ["k10", "k2", "", "K", "ü", "k1", "😀", "\u{7f}"];
        let ours: SortedMap<usize> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| ((*k).to_owned(), i))
            .collect();
        let theirs: std::collections::BTreeMap<String, usize> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| ((*k).to_owned(), i))
            .collect();
        assert!(ours.iter().eq(theirs.iter()));
    }
}
