//! InitProducerId (API key 22): the producer id and epoch an idempotent producer writes
//! into its record batches. Versions 0-4; 2 and later are flexible (tagged fields);
//! 3 and later carry the current id and epoch, so the broker bumps the epoch of a
//! known producer instead of handing out a new id (KIP-360).
//!
//! Added to the vendored rskafka by kafka-producer.

use std::io::{Read, Write};

use crate::protocol::{
    api_key::ApiKey,
    api_version::{ApiVersion, ApiVersionRange},
    error::Error,
    messages::{
        ReadVersionedError, ReadVersionedType, RequestBody, WriteVersionedError,
        WriteVersionedType,
    },
    primitives::{CompactNullableString, Int16, Int32, Int64, NullableString, TaggedFields},
    traits::{ReadType, WriteType},
};

#[derive(Debug)]
pub struct InitProducerIdRequest {
    /// Null for a producer that is idempotent but not transactional.
    pub transactional_id: Option<String>,

    /// Ignored by the broker when there is no transactional id.
    pub transaction_timeout_ms: Int32,

    /// The producer id this producer holds, or -1 for none. Added in version 3.
    pub producer_id: Int64,

    /// The epoch this producer holds, or -1 for none. Added in version 3.
    pub producer_epoch: Int16,
}

impl<W> WriteVersionedType<W> for InitProducerIdRequest
where
    W: Write,
{
    fn write_versioned(
        &self,
        writer: &mut W,
        version: ApiVersion,
    ) -> Result<(), WriteVersionedError> {
        let v = version.0.0;
        assert!(v <= 4);
        if v >= 2 {
            CompactNullableString(self.transactional_id.clone()).write(writer)?;
        } else {
            NullableString(self.transactional_id.clone()).write(writer)?;
        }
        self.transaction_timeout_ms.write(writer)?;
        if v >= 3 {
            self.producer_id.write(writer)?;
            self.producer_epoch.write(writer)?;
        }
        if v >= 2 {
            TaggedFields::default().write(writer)?;
        }
        Ok(())
    }
}

impl RequestBody for InitProducerIdRequest {
    type ResponseBody = InitProducerIdResponse;

    const API_KEY: ApiKey = ApiKey::InitProducerId;

    /// Version 5 only adds transaction-related behaviour (KIP-890).
    const API_VERSION_RANGE: ApiVersionRange =
        ApiVersionRange::new(ApiVersion(Int16(0)), ApiVersion(Int16(4)));

    const FIRST_TAGGED_FIELD_IN_REQUEST_VERSION: ApiVersion = ApiVersion(Int16(2));
}

#[derive(Debug, Clone, Copy)]
pub struct InitProducerIdResponse {
    pub throttle_time_ms: Int32,
    pub error: Option<Error>,
    pub producer_id: Int64,
    pub producer_epoch: Int16,
}

impl<R> ReadVersionedType<R> for InitProducerIdResponse
where
    R: Read,
{
    fn read_versioned(reader: &mut R, version: ApiVersion) -> Result<Self, ReadVersionedError> {
        let v = version.0.0;
        assert!(v <= 4);
        let response = Self {
            throttle_time_ms: Int32::read(reader)?,
            error: Error::new(Int16::read(reader)?.0),
            producer_id: Int64::read(reader)?,
            producer_epoch: Int16::read(reader)?,
        };
        if v >= 2 {
            TaggedFields::read(reader)?;
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn request_bytes_follow_each_version() {
        let request = InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: Int32(60_000),
            producer_id: Int64(7),
            producer_epoch: Int16(2),
        };
        let mut v1 = Vec::new();
        request
            .write_versioned(&mut v1, ApiVersion(Int16(1)))
            .unwrap();
        // null string (-1 as i16), timeout
        assert_eq!(v1, [0xff, 0xff, 0, 0, 0xea, 0x60]);
        let mut v3 = Vec::new();
        request
            .write_versioned(&mut v3, ApiVersion(Int16(3)))
            .unwrap();
        // compact null string (0), timeout, id, epoch, no tagged fields (0)
        assert_eq!(
            v3,
            [0, 0, 0, 0xea, 0x60, 0, 0, 0, 0, 0, 0, 0, 7, 0, 2, 0]
        );
    }

    #[test]
    fn response_is_read_with_and_without_tagged_fields() {
        let v0 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1];
        let r = InitProducerIdResponse::read_versioned(&mut Cursor::new(v0), ApiVersion(Int16(0)))
            .unwrap();
        assert_eq!((r.producer_id.0, r.producer_epoch.0, r.error), (9, 1, None));
        let mut v2 = v0.to_vec();
        v2.push(0);
        let mut cursor = Cursor::new(v2);
        InitProducerIdResponse::read_versioned(&mut cursor, ApiVersion(Int16(2))).unwrap();
        assert_eq!(cursor.position(), 17);
    }
}
