//! Picks the partition a record goes to from its key, exactly as the Java client and librdkafka do.
//! Fed the record key (the event's `user_id`) by the producer's send path; feeds a partition number to the per-partition accumulator.
//!
//! Two hash functions cover every partitioner a Kafka client ships by default:
//!
//! | [`Partitioner`] | librdkafka `partitioner` | Java client | partition of a non-empty key |
//! |---|---|---|---|
//! | [`Partitioner::Murmur2`] | `murmur2_random` | `DefaultPartitioner` / `BuiltInPartitioner` | `to_positive(murmur2(key)) % n` |
//! | [`Partitioner::ConsistentRandom`] | `consistent_random` | — | `crc32(key) % n` |
//!
//! Matching these byte for byte matters: a consumer or another producer that computes the
//! partition of a user id itself (Kafka Streams co-partitioning, a Java service, the original
//! librdkafka producer) must land on the same partition, or per-user ordering breaks.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

/// Kafka's `org.apache.kafka.common.utils.Utils.murmur2`: MurmurHash2 with seed `0x9747b28c`,
/// reading the input as little-endian 32-bit words.
///
/// Returns the hash as Java's signed `int`, so results compare directly with Kafka's own test
/// vectors; use [`to_positive`] before taking a modulo.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java truncates the length to an int; keys are far below 4 GiB, so this is exact.
    let mut h = SEED ^ data.len() as u32;
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        let mut k = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // The Java `switch (length % 4)` falls through from case 3 to case 1.
    let tail = words.remainder();
    if tail.len() == 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (`n & 0x7fffffff`), which is not `abs`:
/// `i32::MIN` maps to 0 and -1 to `0x7fffffff`.
pub fn to_positive(n: i32) -> u32 {
    (n & 0x7fff_ffff) as u32
}

/// CRC-32 (IEEE, as zlib's `crc32()` and librdkafka's `rd_crc32()` compute it): the hash behind
/// librdkafka's `consistent` and `consistent_random` partitioners. From `crc32fast`, the
/// implementation flate2 already uses; murmur2 above stays hand-written because no crate
/// matches Kafka's variant (its seed and its sign handling) byte for byte.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// How a record key is mapped to a partition.
///
/// The default is [`Partitioner::Murmur2`], the Java client's choice, so keys co-partition with
/// Kafka Streams and JVM services. Note that librdkafka's own default — and so the original
/// `rdkafka`-based producer's, which set no `partitioner` — is `consistent_random`: choose
/// [`Partitioner::ConsistentRandom`] to keep sending each user to the partition it used to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Partitioner {
    /// `to_positive(murmur2(key)) % n`: Java's `DefaultPartitioner`, librdkafka's `murmur2_random`.
    #[default]
    Murmur2,
    /// `crc32(key) % n`: librdkafka's `consistent_random`.
    ConsistentRandom,
}

impl Partitioner {
    /// Names [`FromStr`] accepts, canonical name of each variant first.
    pub const ALLOWED_NAMES: [&'static str; 4] = [
        "murmur2_random",
        "murmur2",
        "consistent_random",
        "consistent",
    ];

    /// The partition in `0..partition_count` for a record with this key.
    ///
    /// A non-empty key always maps to the same partition for a given `partition_count`. An
    /// empty key (an event with no user id) has no partition of its own: such records are
    /// spread round-robin by `keyless_counter`, shared by every call for the same topic.
    /// librdkafka picks a random partition there instead (Java a "sticky" one); round-robin
    /// spreads just as evenly and is deterministic, so tests can assert the exact spread.
    ///
    /// Precondition: `partition_count > 0` (a topic always has a partition; 0 is a caller bug).
    /// Debug builds assert it; release builds return partition 0 rather than panic.
    pub fn partition(&self, key: &[u8], partition_count: u32, keyless_counter: &AtomicU32) -> u32 {
        debug_assert!(
            partition_count > 0,
            "partition_count must be at least 1 (a topic has at least one partition)"
        );
        let n = partition_count.max(1);
        if key.is_empty() {
            return keyless_counter.fetch_add(1, Ordering::Relaxed) % n;
        }
        match self {
            Partitioner::Murmur2 => to_positive(murmur2(key)) % n,
            Partitioner::ConsistentRandom => crc32(key) % n,
        }
    }
}

impl FromStr for Partitioner {
    type Err = String;

    /// Accepts librdkafka's `partitioner` values `murmur2_random` and `consistent_random`, and
    /// the shorter `murmur2` and `consistent` (which behave the same here for non-empty keys).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "murmur2" | "murmur2_random" => Ok(Partitioner::Murmur2),
            "consistent" | "consistent_random" => Ok(Partitioner::ConsistentRandom),
            other => Err(format!(
                "unknown partitioner '{other}': expected one of {}",
                Self::ALLOWED_NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for Partitioner {
    /// The librdkafka `partitioner` name with the same behaviour; parses back to `self`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Partitioner::Murmur2 => "murmur2_random",
            Partitioner::ConsistentRandom => "consistent_random",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `UtilsTest.testMurmur2` in apache/kafka,
    /// clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java.
    #[test]
    fn murmur2_matches_kafka_utils_test_vectors() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            // Java's `new byte[] {'a', 'b', 'c'}`.
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(
                murmur2(key),
                expected,
                "murmur2({:?})",
                String::from_utf8_lossy(key)
            );
        }
    }

    /// `unittest_murmur2` in confluentinc/librdkafka, src/rdmurmur2.c (`java_murmur2_results`,
    /// hex as Java's signed int). Covers every tail length 0..=3 and unaligned starts.
    #[test]
    fn murmur2_matches_librdkafka_unittest_vectors() {
        let unaligned = "PreAmbleWillBeRemoved,ThePrePartThatIs";
        let cases: [(&str, u32); 11] = [
            ("kafka", 0xd067_cf64),
            ("giberish123456789", 0x8f55_2b0c),
            ("1234", 0x9fc9_7b14),
            ("234", 0xe7c0_09ca),
            ("34", 0x8739_30da),
            ("4", 0x5a4b_5ca1),
            (unaligned, 0x7842_4f1c),
            (&unaligned[1..], 0x4a62_b377),
            (&unaligned[2..], 0xe0e4_e09e),
            (&unaligned[3..], 0x62b8_b43f),
            ("", 0x106e_08d9),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key.as_bytes()), expected as i32, "murmur2({key:?})");
        }
    }

    /// `do_test_partitioners` in confluentinc/librdkafka, tests/0048-partitioner.c: the
    /// partitions librdkafka's `consistent` and `murmur2` partitioners pick for its keys, for
    /// both topic sizes that test uses (7 and 17 partitions).
    #[test]
    fn partitions_match_librdkafka_partitioner_test_expectations() {
        let keys = [
            "23456",
            "this is another string with more length to it perhaps",
            "hejsan",
        ];
        let crc = [0xb1b4_51d7u32, 0xb015_0df7, 0xd077_037e];
        let murmur = [0x058d_780fu32, 0x4f77_03da, 0x5ec1_9395];
        let counter = AtomicU32::new(0);
        for partition_count in [7u32, 17] {
            for (i, key) in keys.iter().enumerate() {
                assert_eq!(crc32(key.as_bytes()), crc[i], "crc32({key:?})");
                assert_eq!(
                    Partitioner::ConsistentRandom.partition(
                        key.as_bytes(),
                        partition_count,
                        &counter
                    ),
                    crc[i] % partition_count,
                    "consistent_random partition of {key:?} over {partition_count}"
                );
                assert_eq!(
                    Partitioner::Murmur2.partition(key.as_bytes(), partition_count, &counter),
                    murmur[i] % partition_count,
                    "murmur2_random partition of {key:?} over {partition_count}"
                );
            }
        }
    }

    #[test]
    fn crc32_matches_zlib_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414f_a339
        );
    }

    #[test]
    fn to_positive_clears_only_the_sign_bit() {
        assert_eq!(to_positive(0), 0);
        assert_eq!(to_positive(5), 5);
        assert_eq!(to_positive(-1), 0x7fff_ffff);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(i32::MAX), 0x7fff_ffff);
        assert_eq!(to_positive(-973_932_308), 1_173_551_340);
    }

    #[test]
    fn same_key_always_maps_to_same_partition() {
        let counter = AtomicU32::new(0);
        for partitioner in [Partitioner::Murmur2, Partitioner::ConsistentRandom] {
            for user in 0..1000 {
                let key = format!("user-{user}");
                let first = partitioner.partition(key.as_bytes(), 12, &counter);
                for _ in 0..3 {
                    assert_eq!(
                        partitioner.partition(key.as_bytes(), 12, &counter),
                        first,
                        "{partitioner} moved {key}"
                    );
                }
            }
        }
        assert_eq!(
            counter.load(Ordering::Relaxed),
            0,
            "keyed records must not advance the keyless counter"
        );
    }

    #[test]
    fn partition_is_always_below_partition_count() {
        let counter = AtomicU32::new(0);
        for partitioner in [Partitioner::Murmur2, Partitioner::ConsistentRandom] {
            for partition_count in [1u32, 2, 3, 7, 12, 100, u32::MAX] {
                for user in 0..500 {
                    let key = format!("user-{user}");
                    let p = partitioner.partition(key.as_bytes(), partition_count, &counter);
                    assert!(
                        p < partition_count,
                        "{partitioner}: {key} -> {p} of {partition_count}"
                    );
                }
                let p = partitioner.partition(b"", partition_count, &counter);
                assert!(p < partition_count, "{partitioner}: keyless -> {p}");
            }
        }
    }

    #[test]
    fn keyless_records_are_spread_round_robin_exactly_evenly() {
        let counter = AtomicU32::new(0);
        let partition_count = 12;
        let mut per_partition = [0u32; 12];
        for i in 0..1200 {
            let p = Partitioner::Murmur2.partition(b"", partition_count, &counter);
            assert_eq!(
                p,
                i % partition_count,
                "record {i} out of round-robin order"
            );
            per_partition[p as usize] += 1;
        }
        assert_eq!(per_partition, [100; 12]);
        for i in 0..24 {
            assert_eq!(
                Partitioner::ConsistentRandom.partition(b"", partition_count, &counter),
                i % partition_count
            );
        }
    }

    #[test]
    fn keyed_records_spread_across_all_partitions() {
        let counter = AtomicU32::new(0);
        for partitioner in [Partitioner::Murmur2, Partitioner::ConsistentRandom] {
            let mut per_partition = [0u32; 12];
            for user in 0..12_000 {
                let key = format!("user-{user}");
                per_partition[partitioner.partition(key.as_bytes(), 12, &counter) as usize] += 1;
            }
            // 1000 expected per partition; a good hash stays well within +-15 %.
            for (p, count) in per_partition.iter().enumerate() {
                assert!(
                    (850..=1150).contains(count),
                    "{partitioner}: partition {p} got {count} of 12000 ({per_partition:?})"
                );
            }
        }
    }

    #[test]
    fn from_str_accepts_librdkafka_names_and_short_aliases() {
        assert_eq!("murmur2".parse(), Ok(Partitioner::Murmur2));
        assert_eq!("murmur2_random".parse(), Ok(Partitioner::Murmur2));
        assert_eq!("consistent".parse(), Ok(Partitioner::ConsistentRandom));
        assert_eq!(
            "consistent_random".parse(),
            Ok(Partitioner::ConsistentRandom)
        );
    }

    #[test]
    fn from_str_error_names_the_input_and_every_allowed_value() {
        assert_eq!(
            "fnv1a".parse::<Partitioner>(),
            Err(
                "unknown partitioner 'fnv1a': expected one of murmur2_random, murmur2, \
                 consistent_random, consistent"
                    .to_string()
            )
        );
    }

    #[test]
    fn display_parses_back_to_the_same_partitioner() {
        for partitioner in [Partitioner::Murmur2, Partitioner::ConsistentRandom] {
            assert_eq!(partitioner.to_string().parse(), Ok(partitioner));
        }
        assert_eq!(Partitioner::Murmur2.to_string(), "murmur2_random");
        assert_eq!(
            Partitioner::ConsistentRandom.to_string(),
            "consistent_random"
        );
    }

    #[test]
    fn default_partitioner_is_murmur2() {
        assert_eq!(Partitioner::default(), Partitioner::Murmur2);
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "partition_count must be at least 1")]
    fn zero_partition_count_is_caught_in_debug_builds() {
        Partitioner::Murmur2.partition(b"user-1", 0, &AtomicU32::new(0));
    }
}
