//! An incident's provider record, its labels and the provider state last seen, packed into
//! one compressed value (the `record` column).
//!
//! The format is one byte naming the dictionary, then a zstd frame of the JSON object
//! `{"raw": ..., "labels": [...], "seen": ...}` (`seen` only once mirroring has kept a state
//! other than the record). Each provider's records share their keys and much of their
//! wording, so each integration has a dictionary: sample records of its shape, kept in
//! `dictionaries/` (a 1 KB FES ARO packs into about 250 bytes with it, 530 without).
//!
//! A dictionary is part of the format: rows packed with it are unreadable without its exact
//! bytes, so a published dictionary never changes (a test pins each one). A better one is
//! added under a new number, and rows packed with the old one stay readable.
//!
//! Rows written before the `record` column (migration 29) keep `raw_json`, `labels` and
//! `remote_state` as text until the store's rewrite packs them (`sql/repack.rs`).

use std::cell::RefCell;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use watchfloor_core::Label;

use crate::StoreError;

/// The dictionaries by number: 0 is none; each other is the integration whose records it
/// was made from, and its bytes.
const DICTIONARIES: [(u8, &str, &[u8]); 3] = [
    (
        1,
        "covalence-managed-security",
        include_bytes!("../dictionaries/covalence-managed-security.json"),
    ),
    (
        2,
        "covalence-security-providers",
        include_bytes!("../dictionaries/covalence-security-providers.json"),
    ),
    (
        3,
        "symantec-mss",
        include_bytes!("../dictionaries/symantec-mss.json"),
    ),
];

/// The largest record unpacked (a provider record is kilobytes).
const MAX_RECORD: u64 = 256 << 20;

/// zstd's level: its default, which packs a record in a few microseconds.
const LEVEL: i32 = 3;

/// What the `record` column holds, unpacked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub raw: Value,
    #[serde(default)]
    pub labels: Vec<Label>,
    /// The provider's state as mirroring last saw it, when that is not `raw`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Value>,
}

impl Record {
    /// The provider's state as last seen: what mirroring compares the next read with.
    pub fn seen(&self) -> &Value {
        self.seen.as_ref().unwrap_or(&self.raw)
    }
}

struct Codec {
    number: u8,
    compressor: zstd::bulk::Compressor<'static>,
    decompressor: zstd::bulk::Decompressor<'static>,
}

thread_local! {
    /// Each thread's compression contexts, one per dictionary (and none), made once: a
    /// context with a prepared dictionary costs far more to make than a record to pack.
    static CODECS: RefCell<Vec<Codec>> = const { RefCell::new(Vec::new()) };
}

/// The prepared dictionaries, shared by every thread's contexts.
fn prepared() -> &'static [(
    u8,
    zstd::dict::EncoderDictionary<'static>,
    zstd::dict::DecoderDictionary<'static>,
)] {
    static PREPARED: OnceLock<
        Vec<(
            u8,
            zstd::dict::EncoderDictionary<'static>,
            zstd::dict::DecoderDictionary<'static>,
        )>,
    > = OnceLock::new();
    PREPARED.get_or_init(|| {
        DICTIONARIES
            .iter()
            .map(|(n, _, bytes)| {
                (
                    *n,
                    zstd::dict::EncoderDictionary::copy(bytes, LEVEL),
                    zstd::dict::DecoderDictionary::copy(bytes),
                )
            })
            .collect()
    })
}

fn with_codec<T>(
    number: u8,
    f: impl FnOnce(&mut Codec) -> std::io::Result<T>,
) -> Result<T, StoreError> {
    CODECS.with(|codecs| {
        let mut codecs = codecs.borrow_mut();
        let at = match codecs.iter().position(|c| c.number == number) {
            Some(at) => at,
            None => {
                codecs.push(Codec::new(number)?);
                codecs.len() - 1
            }
        };
        f(&mut codecs[at]).map_err(|e| StoreError::Corrupt(format!("packed record: {e}")))
    })
}

impl Codec {
    fn new(number: u8) -> Result<Codec, StoreError> {
        let zstd = |e: std::io::Error| StoreError::Database(format!("zstd: {e}"));
        if number == 0 {
            return Ok(Codec {
                number,
                compressor: zstd::bulk::Compressor::new(LEVEL).map_err(zstd)?,
                decompressor: zstd::bulk::Decompressor::new().map_err(zstd)?,
            });
        }
        let (_, enc, dec) = prepared()
            .iter()
            .find(|(n, _, _)| *n == number)
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "a record is packed with dictionary {number}, which this version does not know: \
                     upgrade watchfloor to read it"
                ))
            })?;
        Ok(Codec {
            number,
            compressor: zstd::bulk::Compressor::with_prepared_dictionary(enc).map_err(zstd)?,
            decompressor: zstd::bulk::Decompressor::with_prepared_dictionary(dec).map_err(zstd)?,
        })
    }
}

/// The dictionary number for records of `integration`.
fn dictionary_of(integration: &str) -> u8 {
    DICTIONARIES
        .iter()
        .find(|(_, name, _)| *name == integration)
        .map_or(0, |(n, _, _)| *n)
}

/// A record to pack, borrowed (its fields as [`Record`]'s).
#[derive(Serialize)]
pub(crate) struct RecordRef<'a> {
    pub raw: &'a Value,
    pub labels: &'a [Label],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen: Option<&'a Value>,
}

impl Record {
    pub fn borrowed(&self) -> RecordRef<'_> {
        RecordRef {
            raw: &self.raw,
            labels: &self.labels,
            seen: self.seen.as_ref(),
        }
    }
}

/// `record` packed for an incident of `integration`.
pub(crate) fn pack(integration: &str, record: &RecordRef<'_>) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(record).map_err(|e| StoreError::Database(e.to_string()))?;
    let number = dictionary_of(integration);
    let frame = with_codec(number, |c| c.compressor.compress(&json))?;
    let mut out = Vec::with_capacity(frame.len() + 1);
    out.push(number);
    out.extend_from_slice(&frame);
    Ok(out)
}

/// The record packed in `bytes`.
pub(crate) fn unpack(bytes: &[u8]) -> Result<Record, StoreError> {
    let (&number, frame) = bytes
        .split_first()
        .ok_or_else(|| StoreError::Corrupt("packed record: empty".into()))?;
    // The frame says its size; a damaged one cannot make the read allocate without bound.
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) if n <= MAX_RECORD => n as usize,
        _ => return Err(StoreError::Corrupt("packed record: no valid size".into())),
    };
    let json = with_codec(number, |c| c.decompressor.decompress(frame, size))?;
    serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt(format!("packed record: {e}")))
}

/// The record packed in `hex` (as a page built in SQL carries it).
pub(crate) fn unpack_hex(text: &str) -> Result<Record, StoreError> {
    let bytes =
        hex::decode(text).map_err(|e| StoreError::Corrupt(format!("packed record: {e}")))?;
    unpack(&bytes)
}

/// The record of a row written before records were packed: its three text columns.
pub(crate) fn from_columns(
    raw_json: &str,
    labels: &str,
    remote_state: Option<&str>,
) -> Result<Record, StoreError> {
    Ok(Record {
        raw: serde_json::from_str(raw_json)
            .map_err(|e| StoreError::Corrupt(format!("raw JSON: {e}")))?,
        labels: serde_json::from_str(labels)
            .map_err(|e| StoreError::Corrupt(format!("labels: {e}")))?,
        seen: remote_state
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("remote state: {e}")))?,
    })
}

/// The record of an incident's row: packed, or in its text columns if not packed yet.
pub(crate) fn from_row<R: crate::base::IncidentRow>(row: &R) -> Result<Record, StoreError> {
    match row.bytes_or_null("record")? {
        Some(packed) => unpack(&packed),
        None => from_columns(
            &row.text("raw_json")?,
            &row.text("labels")?,
            row.text_or_null("remote_state").ok().flatten().as_deref(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(t: &str, v: &str) -> Label {
        Label {
            kind: t.into(),
            value: v.into(),
        }
    }

    #[test]
    fn a_record_comes_back_as_it_was_packed() {
        let record = Record {
            raw: serde_json::json!({"ID": "a", "details": "<b>x</b>\u{0}", "n": [1, 2.5, null]}),
            labels: vec![label("Organization", "Acme")],
            seen: Some(serde_json::json!({"ID": "a", "resolution": "Resolved"})),
        };
        for integration in ["covalence-managed-security", "symantec-mss", "", "unknown"] {
            let packed = pack(integration, &record.borrowed()).expect("pack");
            assert_eq!(unpack(&packed).expect("unpack"), record, "{integration}");
            assert_eq!(
                unpack_hex(&hex::encode_upper(&packed)).expect("hex"),
                record
            );
        }
    }

    #[test]
    fn a_dictionary_makes_a_provider_record_small() {
        for (_, integration, bytes) in DICTIONARIES {
            let text = std::str::from_utf8(bytes).expect("utf-8");
            let sample: Record =
                serde_json::from_str(text.lines().next().expect("a line")).expect("a record");
            // A record like the samples, with other values: what the dictionary is for.
            let mut other = sample.clone();
            if let Value::Object(fields) = &mut other.raw {
                for v in fields.values_mut() {
                    if let Value::String(s) = v {
                        *s = s.chars().rev().collect();
                    }
                }
            }
            let json = serde_json::to_vec(&other).expect("json").len();
            let with = pack(integration, &other.borrowed()).expect("pack").len();
            let without = pack("", &other.borrowed()).expect("pack").len();
            assert!(
                with < without && with * 2 < json,
                "{integration}: {json} bytes of JSON packed into {with} with its dictionary, {without} without"
            );
        }
    }

    #[test]
    fn damaged_or_unknown_records_are_errors_not_panics() {
        for bytes in [
            &[][..],
            &[0][..],
            &[1, 2, 3][..],
            &[9, 0x28, 0xb5, 0x2f, 0xfd][..],
        ] {
            assert!(unpack(bytes).is_err(), "{bytes:?}");
        }
        assert!(unpack_hex("zz").is_err());
    }

    /// Rows packed with a dictionary can only be read with its exact bytes: a published
    /// dictionary must never change. Add a new one under a new number instead.
    #[test]
    fn published_dictionaries_never_change() {
        fn fnv(bytes: &[u8]) -> u64 {
            bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
            })
        }
        let pinned: Vec<(u8, u64)> = DICTIONARIES
            .iter()
            .map(|(n, _, bytes)| (*n, fnv(bytes)))
            .collect();
        assert_eq!(pinned, PINNED, "a published dictionary changed");
    }

    const PINNED: [(u8, u64); 3] = [
        (1, 14356238479112735353),
        (2, 12229521228865195275),
        (3, 16715457395686589477),
    ];
}
