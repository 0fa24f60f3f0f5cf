//! Compresses the records section of a record batch with the topic's codec, as Kafka
//! expects each codec framed: zstd and gzip frames, LZ4 frames with independent blocks
//! (Kafka's `KafkaLZ4BlockOutputStream`), raw snappy (which the broker and the Java
//! client also accept). Used by the accumulator when a batch closes.
//!
//! One `Compressor` per partition worker: the zstd context (a few hundred KiB of tables)
//! is made once and reused, instead of once per batch.

use std::io::{self, Write};

use crate::config::CompressionCodec;

/// zstd's default level, what librdkafka (`compression.level=-1`) and rskafka use.
const ZSTD_LEVEL: i32 = zstd::DEFAULT_COMPRESSION_LEVEL;

pub struct Compressor {
    codec: CompressionCodec,
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}

impl Compressor {
    pub fn new(codec: CompressionCodec) -> Self {
        Self { codec, zstd: None }
    }

    pub fn codec(&self) -> CompressionCodec {
        self.codec
    }

    /// The codec's id in a v2 batch's attributes (bits 0-2).
    pub fn attribute(&self) -> i16 {
        match self.codec {
            CompressionCodec::None => 0,
            CompressionCodec::Gzip => 1,
            CompressionCodec::Snappy => 2,
            CompressionCodec::Lz4 => 3,
            CompressionCodec::Zstd => 4,
        }
    }

    /// Appends `input`, compressed, to `out`.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        match self.codec {
            CompressionCodec::None => out.extend_from_slice(input),
            CompressionCodec::Zstd => {
                let zstd = match &mut self.zstd {
                    Some(zstd) => zstd,
                    empty => empty.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
                };
                let start = out.len();
                out.reserve(zstd::zstd_safe::compress_bound(input.len()));
                // Written straight into `out`'s spare room, after what it holds.
                let mut tail = io::Cursor::new(out);
                tail.set_position(start as u64);
                zstd.compress_to_buffer(input, &mut tail)?;
            }
            CompressionCodec::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(out, flate2::Compression::default());
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
}
