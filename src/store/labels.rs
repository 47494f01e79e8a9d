//! A call's tags and topics folded into one integer, `calls.label_bits`, which the filter
//! indexes carry. A search by tag or topic first tests the bits in the index it already reads,
//! and looks up `call_tags` / `call_topics` only for the calls that pass: at 10 million calls
//! "7 days of a campaign in two groups with a tag" otherwise probed ~20,000 calls of the
//! campaign one by one for the tag.
//!
//! The bits are a filter that never misses and may over-select: tag ids share 32 bits and topic
//! ids 31 (bits 32–62, so the value is never negative), so ids that share a bit are told apart
//! by the look-up that follows. Migration 0013 computes the same bits in SQL.

use super::batch_rows::Insert;

/// What kind of label an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Tag,
    Topic,
}

impl Label {
    /// The bit of one id.
    pub fn bit(self, id: i64) -> i64 {
        match self {
            Label::Tag => 1 << id.rem_euclid(32),
            Label::Topic => 1 << (32 + id.rem_euclid(31)),
        }
    }

    /// `bit` in SQL, of the id in `column` (the same in both databases).
    pub fn sql_bit(self, column: &str) -> String {
        match self {
            Label::Tag => format!("(CAST(1 AS BIGINT) << CAST({column} % 32 AS INTEGER))"),
            Label::Topic => format!("(CAST(1 AS BIGINT) << CAST(32 + {column} % 31 AS INTEGER))"),
        }
    }

    /// How a call's labels of this kind are written: `call_tags (call_id, tag_id)` or
    /// `call_topics (call_id, topic_id)`.
    pub fn insert(self) -> &'static Insert {
        static TAGS: Insert = Insert {
            table: "call_tags",
            columns: &["call_id", "tag_id"],
            tail: "",
        };
        static TOPICS: Insert = Insert {
            table: "call_topics",
            columns: &["call_id", "topic_id"],
            tail: "",
        };
        match self {
            Label::Tag => &TAGS,
            Label::Topic => &TOPICS,
        }
    }

    /// The directory table of the labels, the table of a call's labels and its label column.
    pub fn tables(self) -> (&'static str, &'static str, &'static str) {
        let directory = match self {
            Label::Tag => "tags",
            Label::Topic => "topics",
        };
        let calls = self.insert();
        (directory, calls.table, calls.columns[1])
    }

    /// The bits of a set of ids: a call carries them all, a filter any of them.
    pub fn bits(self, ids: &[i64]) -> i64 {
        ids.iter().fold(0, |bits, id| bits | self.bit(*id))
    }
}

/// The `label_bits` of a call with these tags and topics.
pub fn label_bits(tags: &[i64], topics: &[i64]) -> i64 {
    Label::Tag.bits(tags) | Label::Topic.bits(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_topics_have_bits_of_their_own() {
        assert_eq!(Label::Tag.bit(1), 2);
        assert_eq!(Label::Tag.bit(33), 2, "ids 32 apart share a bit");
        assert_eq!(Label::Tag.bit(31), 1 << 31);
        assert_eq!(Label::Topic.bit(0), 1 << 32);
        assert_eq!(Label::Topic.bit(30), 1 << 62);
        assert_eq!(Label::Topic.bit(31), 1 << 32, "ids 31 apart share a bit");
        // Every tag bit is below every topic bit, and no value is negative.
        let all = label_bits(&(0..32).collect::<Vec<_>>(), &(0..31).collect::<Vec<_>>());
        assert_eq!(all, i64::MAX);
        assert_eq!(Label::Tag.bits(&(0..32).collect::<Vec<_>>()), 0xFFFF_FFFF);
        assert_eq!(label_bits(&[], &[]), 0);
        assert_eq!(label_bits(&[3, 35], &[4]), (1 << 3) | (1 << 36));
    }

    /// The SQL form gives the same bits (SQLite here; the PostgreSQL suite runs the searches).
    #[test]
    fn the_sql_bits_are_the_same() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for label in [Label::Tag, Label::Topic] {
            for id in [0i64, 1, 30, 31, 32, 33, 61, 62, 63, 1_000_003] {
                let sql = format!("SELECT {}", label.sql_bit("?1"));
                let bit: i64 = conn.query_row(&sql, [id], |r| r.get(0)).unwrap();
                assert_eq!(bit, label.bit(id), "{label:?} {id}");
            }
        }
    }
}
