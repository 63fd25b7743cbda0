//! What the mount shows, and inode numbers for it.
//!
//! ```text
//! /<db>/head.duckdb               the writable head (one writer process)
//! /<db>/head.duckdb.wal, .tmp/…   DuckDB's side files, kept in a local dir
//! /<db>/latest.duckdb             symlink to snapshots/<newest>.duckdb
//! /<db>/snapshots/<id>.duckdb     every retained snapshot, read-only
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

pub const ROOT_INO: u64 = 1;
pub const HEAD_FILE: &str = "head.duckdb";
pub const LATEST_FILE: &str = "latest.duckdb";
pub const SNAPSHOTS_DIR: &str = "snapshots";
const SNAPSHOT_SUFFIX: &str = ".duckdb";

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Root,
    Db(String),
    Snapshots(String),
    Snapshot(String, i64),
    Latest(String),
    Head(String),
    /// A side file or directory of a database: path relative to its side dir.
    Side(String, PathBuf),
}

pub fn snapshot_file_name(id: i64) -> String {
    format!("{id}{SNAPSHOT_SUFFIX}")
}

pub fn parse_snapshot_file_name(name: &str) -> Option<i64> {
    let id: i64 = name.strip_suffix(SNAPSHOT_SUFFIX)?.parse().ok()?;
    (id > 0 && snapshot_file_name(id) == name).then_some(id)
}

/// Stable inode numbers for nodes, allocated on first sight.
pub struct Namespace {
    inner: Mutex<Inner>,
}

struct Inner {
    by_ino: HashMap<u64, Node>,
    by_node: HashMap<Node, u64>,
    next: u64,
}

impl Default for Namespace {
    fn default() -> Self {
        let mut inner = Inner { by_ino: HashMap::new(), by_node: HashMap::new(), next: ROOT_INO + 1 };
        inner.by_ino.insert(ROOT_INO, Node::Root);
        inner.by_node.insert(Node::Root, ROOT_INO);
        Namespace { inner: Mutex::new(inner) }
    }
}

impl Namespace {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn ino(&self, node: &Node) -> u64 {
        let mut g = self.lock();
        if let Some(i) = g.by_node.get(node) {
            return *i;
        }
        let i = g.next;
        g.next += 1;
        g.by_ino.insert(i, node.clone());
        g.by_node.insert(node.clone(), i);
        i
    }

    pub fn node(&self, ino: u64) -> Option<Node> {
        self.lock().by_ino.get(&ino).cloned()
    }

    /// A side entry moved: its inode follows it (with everything below it),
    /// and whatever stood at the target is forgotten.
    pub fn rename_side(&self, db: &str, from: &std::path::Path, to: &std::path::Path) {
        let mut g = self.lock();
        let moved: Vec<(Node, u64)> = g
            .by_node
            .iter()
            .filter_map(|(n, i)| match n {
                Node::Side(d, p) if d == db && p.starts_with(from) => Some((n.clone(), *i)),
                _ => None,
            })
            .collect();
        let replaced: Vec<Node> = g
            .by_node
            .keys()
            .filter(|n| matches!(n, Node::Side(d, p) if d == db && p.starts_with(to)))
            .cloned()
            .collect();
        for n in replaced {
            if let Some(i) = g.by_node.remove(&n) {
                g.by_ino.remove(&i);
            }
        }
        for (old, ino) in moved {
            let Node::Side(d, p) = &old else { continue };
            let rest = p.strip_prefix(from).unwrap_or(p.as_path());
            let new = Node::Side(d.clone(), to.join(rest));
            g.by_node.remove(&old);
            g.by_node.insert(new.clone(), ino);
            g.by_ino.insert(ino, new);
        }
    }

    pub fn forget_side(&self, db: &str, path: &std::path::Path) {
        let mut g = self.lock();
        if let Some(i) = g.by_node.remove(&Node::Side(db.to_string(), path.to_path_buf())) {
            g.by_ino.remove(&i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inodes_are_stable_and_follow_renames() {
        let ns = Namespace::default();
        assert_eq!(ns.node(ROOT_INO), Some(Node::Root));
        let a = ns.ino(&Node::Side("d".into(), "x.wal.checkpoint".into()));
        let old = ns.ino(&Node::Side("d".into(), "x.wal".into()));
        assert_eq!(ns.ino(&Node::Db("d".into())), ns.ino(&Node::Db("d".into())));
        ns.rename_side("d", "x.wal.checkpoint".as_ref(), "x.wal".as_ref());
        assert_eq!(ns.node(a), Some(Node::Side("d".into(), "x.wal".into())));
        assert_eq!(ns.node(old), None);
        assert_eq!(ns.ino(&Node::Side("d".into(), "x.wal".into())), a);
    }

    #[test]
    fn snapshot_names() {
        assert_eq!(parse_snapshot_file_name("42.duckdb"), Some(42));
        for bad in ["042.duckdb", "0.duckdb", "-1.duckdb", "x.duckdb", "42.duckdb.wal", "42"] {
            assert_eq!(parse_snapshot_file_name(bad), None, "{bad}");
        }
    }
}
