//! A radix tree over the rules' literal path prefixes.
//!
//! Every path a rule matches starts with the rule's literal prefix (the text
//! before its first placeholder or regex syntax). Walking the tree along the
//! request path visits exactly the rules whose prefix the path starts with;
//! only those are verified. The cost depends on the path and the number of
//! candidates, not on the number of rules.

#[derive(Clone, Debug, Default)]
struct Node {
    /// Edge label from the parent.
    label: Box<[u8]>,
    /// Rules whose prefix ends here, ascending.
    rules: Vec<u32>,
    /// Children by first label byte, sorted.
    children: Vec<(u8, u32)>,
}

/// The prefix index.
#[derive(Clone, Debug)]
pub(crate) struct PrefixIndex {
    nodes: Vec<Node>,
}

impl Default for PrefixIndex {
    fn default() -> Self {
        PrefixIndex {
            nodes: vec![Node::default()],
        }
    }
}

impl PrefixIndex {
    /// Adds `rule` (added in ascending order) under `prefix`.
    pub(super) fn insert(&mut self, prefix: &[u8], rule: u32) {
        let mut node = 0usize;
        let mut rest = prefix;
        loop {
            if rest.is_empty() {
                self.nodes[node].rules.push(rule);
                return;
            }
            let first = rest[0];
            let children = &self.nodes[node].children;
            match children.binary_search_by_key(&first, |&(b, _)| b) {
                Err(at) => {
                    let id = self.nodes.len() as u32;
                    self.nodes.push(Node {
                        label: rest.into(),
                        rules: vec![rule],
                        children: Vec::new(),
                    });
                    self.nodes[node].children.insert(at, (first, id));
                    return;
                }
                Ok(at) => {
                    let child = children[at].1 as usize;
                    let label = &self.nodes[child].label;
                    let common = label.iter().zip(rest).take_while(|(a, b)| a == b).count();
                    if common == label.len() {
                        node = child;
                        rest = &rest[common..];
                        continue;
                    }
                    // Split the edge: node -> mid -> child.
                    let mid = self.nodes.len() as u32;
                    let tail: Box<[u8]> = label[common..].into();
                    let head: Box<[u8]> = label[..common].into();
                    self.nodes[child].label = tail;
                    let tail_first = self.nodes[child].label[0];
                    self.nodes.push(Node {
                        label: head,
                        rules: Vec::new(),
                        children: vec![(tail_first, child as u32)],
                    });
                    self.nodes[node].children[at].1 = mid;
                    node = mid as usize;
                    rest = &rest[common..];
                }
            }
        }
    }

    /// Calls `visit` with each list of rules whose prefix `path` starts with
    /// (each list ascending; lists come shortest prefix first).
    #[inline]
    pub(super) fn for_each_candidates(&self, path: &[u8], mut visit: impl FnMut(&[u32])) {
        let mut node = &self.nodes[0];
        let mut pos = 0;
        loop {
            if !node.rules.is_empty() {
                visit(&node.rules);
            }
            let Some(&next) = path.get(pos) else { return };
            let Ok(at) = node.children.binary_search_by_key(&next, |&(b, _)| b) else {
                return;
            };
            let child = &self.nodes[node.children[at].1 as usize];
            let end = pos + child.label.len();
            if path.len() < end || path[pos..end] != child.label[..] {
                return;
            }
            node = child;
            pos = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_prefix() {
        let prefixes: &[&[u8]] = &[b"/", b"/foo", b"/foobar", b"/fob", b"", b"/foo", b"/x/y"];
        let mut idx = PrefixIndex::default();
        for (i, p) in prefixes.iter().enumerate() {
            idx.insert(p, i as u32);
        }
        for path in [
            &b"/foobarbaz"[..],
            b"/fo",
            b"/fob/",
            b"/x/y",
            b"/x/",
            b"",
            b"z",
        ] {
            let mut got = Vec::new();
            idx.for_each_candidates(path, |l| got.extend_from_slice(l));
            got.sort();
            let want: Vec<u32> = prefixes
                .iter()
                .enumerate()
                .filter(|(_, p)| path.starts_with(p))
                .map(|(i, _)| i as u32)
                .collect();
            assert_eq!(got, want, "path {:?}", String::from_utf8_lossy(path));
        }
    }
}
