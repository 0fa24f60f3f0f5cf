//! Compresses the records section of a record batch with the topic's codec, as Kafka
//! expects each codec framed: zstd and gzip frames, LZ4 frames with independent blocks
//! (Kafka's `KafkaLZ4BlockOutputStream`), raw snappy (which the broker and the Java
//! client also accept). Used by `record_batch` when a batch closes.
//!
//! zstd gets a fresh context for every batch of [`SMALL_BATCH_BYTES`] or more, as
//! librdkafka does: measured faster than reusing one per partition or per thread (a
//! reused context keeps its match tables and reads them cold from memory; a new one
//! zeroes them first, which brings them into cache), and no memory held between
//! batches. A smaller batch reuses its thread's context instead: creating one costs
//! 17-28 µs on this project's VMs, more than compressing a 6 KB batch (17.5 µs), and
//! small inputs use small tables that stay in cache. At 1,000 partitions (batches of
//! ~40 records, ~6 KB) that was 14 % less send-phase CPU (`BENCHMARKS.md`, section 6).

use std::io::{self, Write};

use crate::config::CompressionCodec;

/// zstd's default level, what librdkafka (`compression.level=-1`) and rskafka use.
const ZSTD_LEVEL: i32 = zstd::DEFAULT_COMPRESSION_LEVEL;

/// Records sections below this many bytes reuse their thread's zstd context.
const SMALL_BATCH_BYTES: usize = 16 * 1024;

thread_local! {
    /// This thread's context for small batches, made on first use.
    static SMALL_BATCH_ZSTD: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Compresses `input` into `out` with zstd, framed as Kafka expects.
fn zstd_compress(input: &[u8], out: &mut io::Cursor<&mut Vec<u8>>) -> io::Result<()> {
    if input.len() >= SMALL_BATCH_BYTES {
        zstd::bulk::Compressor::new(ZSTD_LEVEL)?.compress_to_buffer(input, out)?;
        return Ok(());
    }
    SMALL_BATCH_ZSTD.with(|context| {
        let mut context = context.borrow_mut();
        let compressor = match context.as_mut() {
            Some(compressor) => compressor,
            None => context.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
        };
        compressor.compress_to_buffer(input, out)?;
        Ok(())
    })
}

/// The codec's id in a v2 batch's attributes (bits 0-2).
pub fn attribute(codec: CompressionCodec) -> i16 {
    match codec {
        CompressionCodec::None => 0,
        CompressionCodec::Gzip => 1,
        CompressionCodec::Snappy => 2,
        CompressionCodec::Lz4 => 3,
        CompressionCodec::Zstd => 4,
    }
}

/// Appends `input`, compressed with `codec`, to `out`.
pub fn compress(codec: CompressionCodec, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    match codec {
        CompressionCodec::None => out.extend_from_slice(input),
        CompressionCodec::Zstd => {
            let start = out.len();
            out.reserve(zstd::zstd_safe::compress_bound(input.len()));
            // Written straight into `out`'s spare room, after what it holds.
            let mut tail = io::Cursor::new(out);
            tail.set_position(start as u64);
            zstd_compress(input, &mut tail)?;
        }
        CompressionCodec::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            encoder.write_all(input)?;
            encoder.finish()?;
        }
        CompressionCodec::Lz4 => {
            let mut encoder = lz4::EncoderBuilder::new()
                .block_mode(lz4::BlockMode::Independent)
                .build(out)?;
            encoder.write_all(input)?;
            let (_, result) = encoder.finish();
            result?;
        }
        CompressionCodec::Snappy => {
            let start = out.len();
            out.resize(start + snap::raw::max_compress_len(input.len()), 0);
            let len = snap::raw::Encoder::new()
                .compress(input, &mut out[start..])
                .map_err(io::Error::other)?;
            out.truncate(start + len);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small batches share their thread's context and large ones get a fresh one: every
    /// frame must still decode on its own to exactly its input.
    #[test]
    fn zstd_frames_decode_alone_whether_the_context_was_reused_or_fresh() {
        let small: Vec<u8> = (0..6_000u32).map(|i| (i % 251) as u8).collect();
        let other_small: Vec<u8> = (0..9_000u32).map(|i| (i * 7 % 13) as u8).collect();
        let large: Vec<u8> = (0..200_000u32).map(|i| (i % 97) as u8).collect();
        for input in [&small, &other_small, &large, &small, &other_small] {
            let mut out = b"prefix".to_vec();
            compress(CompressionCodec::Zstd, input, &mut out).unwrap();
            assert_eq!(&out[..6], b"prefix");
            let decoded = zstd::bulk::decompress(&out[6..], input.len()).unwrap();
            assert_eq!(&decoded, input);
        }
    }
}
