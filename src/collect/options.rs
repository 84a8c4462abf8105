//! Which collector groups a scrape writes, and for which containers: the switches of
//! [`GROUPS`], `--ecs.containers-exclude`'s patterns and `--ecs.container-labels`' keys.

use super::{GROUPS, Switch};

/// Which groups to write, and for which containers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Bit `i` set: group `i` of [`GROUPS`] is off.
    off: u64,
    /// Container name patterns (`*` matches any run of characters) whose containers get no
    /// container-level samples.
    pub exclude: Vec<String>,
    /// Container label key patterns whose labels group `container_labels` writes.
    pub labels: Vec<String>,
}

impl Default for Options {
    /// Every group at its default.
    fn default() -> Self {
        Options::with(|switch| switch.default)
    }
}

impl Options {
    /// Every group with a switch on or off as `on` says.
    pub fn with(on: impl Fn(&Switch) -> bool) -> Options {
        let mut options = Options {
            off: 0,
            exclude: Vec::new(),
            labels: Vec::new(),
        };
        for (i, group) in GROUPS.iter().enumerate() {
            if group.switch.as_ref().is_some_and(|s| !on(s)) {
                options.off |= 1 << i;
            }
        }
        options
    }

    /// Switches off every group with a switch that `keep` does not keep
    /// (`--collector.disable-defaults`).
    pub fn turn_off_unless(&mut self, keep: impl Fn(&Switch) -> bool) {
        self.off |= Options::with(keep).off;
    }

    /// Switches the group `--[no-]collector.NAME` on or off; false if there is none by that name.
    pub fn set(&mut self, name: &str, on: bool) -> bool {
        let found = GROUPS
            .iter()
            .position(|g| g.switch.as_ref().is_some_and(|s| s.name == name));
        match found {
            Some(i) if on => self.off &= !(1 << i),
            Some(i) => self.off |= 1 << i,
            None => return false,
        }
        true
    }

    /// Whether the group `--[no-]collector.NAME` is on.
    pub fn is_on(&self, name: &str) -> bool {
        GROUPS
            .iter()
            .enumerate()
            .any(|(i, g)| g.switch.as_ref().is_some_and(|s| s.name == name) && self.on(i))
    }

    pub(super) fn on(&self, group: usize) -> bool {
        self.off & (1 << group) == 0
    }

    pub(super) fn excludes(&self, name: &str) -> bool {
        self.exclude
            .iter()
            .any(|pattern| wildcard_match(pattern, name))
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (none included)
/// and everything else matches itself. Greedy with one backtrack point: linear in practice.
pub(super) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if t.get(ti) == Some(&c) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_patterns() {
        let rows: &[(&str, &str, bool)] = &[
            ("ecs-exporter", "ecs-exporter", true),
            ("ecs-exporter", "ecs-exporter2", false),
            ("ecs-*", "ecs-exporter", true),
            ("ecs-*", "ecs-", true),
            ("ecs-*", "ecs", false),
            ("*-sidecar", "envoy-sidecar", true),
            ("*", "", true),
            ("", "", true),
            ("", "x", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("*~internal~*", "~internal~ecs~pause", true),
            ("a**b", "ab", true),
            ("*aab", "aaaab", true),
        ];
        for &(pattern, text, want) in rows {
            assert_eq!(
                wildcard_match(pattern, text),
                want,
                "{pattern:?} ~ {text:?}"
            );
        }
    }

    /// Each switch turns its own group on and off by name, and only it; the defaults are the
    /// table's. Read from [`GROUPS`], so a new group is checked without an edit here.
    #[test]
    fn switches_by_name_and_defaults_from_the_table() {
        let names: Vec<&str> = GROUPS
            .iter()
            .filter_map(|g| g.switch.as_ref())
            .map(|s| s.name)
            .collect();
        assert!(GROUPS.len() <= 64, "Options keeps a bit per group");
        for (i, name) in names.iter().enumerate() {
            assert!(
                !names[..i].contains(name),
                "two groups are called {name}: their --collector.{name} would be one flag"
            );
            assert!(
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "group {name:?}: a name is lowercase letters and _, as node_exporter's"
            );
        }
        for group in GROUPS.iter().filter_map(|g| g.switch.as_ref()) {
            assert_eq!(
                Options::default().is_on(group.name),
                group.default,
                "{}",
                group.name
            );
            let mut options = Options::default();
            for on in [false, true] {
                assert!(options.set(group.name, on));
                for other in &names {
                    let want = if *other == group.name {
                        on
                    } else {
                        Options::default().is_on(other)
                    };
                    assert_eq!(
                        options.is_on(other),
                        want,
                        "{} set to {on}: {other}",
                        group.name
                    );
                }
            }
        }
        let mut options = Options::default();
        assert!(!options.set("network", false), "no such group");
        assert!(!options.is_on("network"));
        assert_eq!(options, Options::default());
        let none = Options::with(|_| false);
        assert!(names.iter().all(|n| !none.is_on(n)));
        // The Go exporter's groups have no switch and are never off.
        for (i, group) in GROUPS.iter().enumerate() {
            if group.switch.is_none() {
                assert!(none.on(i), "group {i}");
            }
        }
    }
}
