//! Which shard a database belongs to: SHA-256 of its identity (the database name, or the
//! redacted URL of a URL line) modulo the shard count. Stable: adding or removing a tenant never
//! moves another, and every pod of an Indexed Job computes the same partition on its own.

use sha2::{Digest, Sha256};

/// `--shard INDEX/COUNT`: this run works on the databases whose hash modulo `count` is `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// More shards than this is a typo, not a plan (an Indexed Job allows 100,000 completions).
const MAX_COUNT: u32 = 100_000;

impl Shard {
    /// `INDEX/COUNT`, or `/COUNT` with INDEX taken from `job_index` (Kubernetes sets
    /// `JOB_COMPLETION_INDEX` in every pod of an Indexed Job).
    pub fn parse(s: &str, job_index: Option<&str>) -> Result<Shard, String> {
        let Some((index, count)) = s.split_once('/') else {
            return Err(
                "expected INDEX/COUNT, e.g. 0/4, or /COUNT to take INDEX from JOB_COMPLETION_INDEX"
                    .into(),
            );
        };
        let count = match count.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_COUNT).contains(&n) => n,
            _ => {
                return Err(format!(
                    "COUNT must be a whole number from 1 to {MAX_COUNT}"
                ))
            }
        };
        let (index, from) = match index.trim() {
            "" => match job_index {
                Some(i) => (i.trim(), "JOB_COMPLETION_INDEX"),
                None => {
                    return Err(
                        "INDEX is left out and JOB_COMPLETION_INDEX is not set (it is set in the pods of an \
                         Indexed Job)"
                            .into(),
                    )
                }
            },
            given => (given, "INDEX"),
        };
        match index.parse::<u32>() {
            Ok(index) if index < count => Ok(Shard { index, count }),
            _ => Err(format!(
                "{from} {index:?} must be a whole number from 0 to {}",
                count - 1
            )),
        }
    }

    /// Whether the database with this identity is this shard's.
    pub fn owns(&self, identity: &str) -> bool {
        shard_of(identity, self.count) == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The first 8 bytes of SHA-256 of `identity`, big-endian, modulo `count`.
pub fn shard_of(identity: &str, count: u32) -> u32 {
    let digest = Sha256::digest(identity.as_bytes());
    let head = digest
        .iter()
        .take(8)
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    // `count` is at least 1 (checked by `parse`); `max` keeps a hand-built 0 from panicking.
    (head % u64::from(count.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_index_and_count() {
        assert_eq!(Shard::parse("1/4", None), Ok(Shard { index: 1, count: 4 }));
        assert_eq!(
            Shard::parse("/4", Some("3")),
            Ok(Shard { index: 3, count: 4 })
        );
        // An explicit index wins over the Job's.
        assert_eq!(
            Shard::parse("0/2", Some("1")),
            Ok(Shard { index: 0, count: 2 })
        );
        for bad in ["4", "4/4", "-1/4", "0/0", "x/2", "1/", "/"] {
            assert!(Shard::parse(bad, None).is_err(), "{bad} was accepted");
        }
        assert!(Shard::parse("/4", None).is_err());
        assert!(Shard::parse("/4", Some("9")).is_err());
    }

    /// The hash is part of the contract (an operator may compute it elsewhere): pinned values.
    #[test]
    fn the_hash_is_stable() {
        // As computed by `python3 -c 'import hashlib; d = hashlib.sha256(b"tenant_0").digest();
        // print(int.from_bytes(d[:8], "big") % 4)'`: pinned, so a change of hash is noticed.
        let spread: Vec<u32> = (0..8)
            .map(|i| shard_of(&format!("tenant_{i}"), 4))
            .collect();
        assert_eq!(spread, PINNED);
    }

    const PINNED: [u32; 8] = [1, 1, 3, 1, 1, 2, 0, 0];

    #[test]
    fn every_identity_has_exactly_one_shard() {
        let count = 5;
        for i in 0..500 {
            let id = format!("tenant_{i}");
            let owners = (0..count)
                .filter(|&index| Shard { index, count }.owns(&id))
                .count();
            assert_eq!(owners, 1, "{id}");
        }
        // And the shards are used: no shard is empty over 500 names.
        for index in 0..count {
            assert!((0..500).any(|i| Shard { index, count }.owns(&format!("tenant_{i}"))));
        }
    }
}
