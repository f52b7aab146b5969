//! What a Parquet file declares, checked before polars' reader trusts it.
//!
//! polars 0.55 reads a Parquet file's footer and page headers trusting the
//! counts they declare, so a damaged or hostile file of a few kilobytes could
//! make it allocate far more memory than the machine has (and abort the
//! process) or loop for hours. [`check`] refuses such a file with an error
//! instead, before polars reads it; `fuzz/` found each case:
//!
//! * a list in the footer declaring more elements than the footer has bytes:
//!   polars reserves room for every element up front (tens of gigabytes for
//!   a list of row groups), and skips the elements of a list of booleans it
//!   does not know without reading any byte, so nested lists of two billion
//!   booleans kept it busy for hours. [`footer_lists_fit`] walks the footer the
//!   way polars' reader does — the fields polars knows as the types it reads
//!   them as, the others as it skips them — and adds up what the lists
//!   declare: in a valid footer every element takes at least one byte;
//! * a data page declaring a negative number of values, which polars takes
//!   for a number near 2^64 and reserves memory for.
//!
//! What else is wrong with a file (a truncated footer, an unknown type) is
//! left to polars to report; a panic of its reader is caught by
//! [`catch_reader_panic`](super::table::catch_reader_panic).

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use polars::prelude::{PolarsError, PolarsResult};
use polars_parquet::parquet::page::{CompressedPage, DataPageHeader};
use polars_parquet::parquet::read::{read_metadata, PageMetaData, PageReader};

/// Refuse the Parquet file at `path` if its footer or a data page declares
/// counts polars' reader would trust to the point of exhausting memory or
/// time. Every page header is read once, a column chunk at a time.
pub fn check(path: &Path) -> PolarsResult<()> {
    let mut file = std::fs::File::open(path)?;
    let file_len = file.metadata()?.len();
    // The file ends with the footer's length (4 bytes, little-endian) and `PAR1`.
    if file_len < 12 {
        return Ok(());
    }
    let mut tail = [0u8; 8];
    file.seek(SeekFrom::Start(file_len - 8))?;
    file.read_exact(&mut tail)?;
    let footer_len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if &tail[4..] != b"PAR1" || footer_len > file_len - 12 {
        return Ok(());
    }
    let mut footer = vec![0; footer_len as usize];
    file.seek(SeekFrom::Start(file_len - 8 - footer_len))?;
    file.read_exact(&mut footer)?;
    footer_lists_fit(&footer)
        .map_err(|what| PolarsError::ComputeError(format!("its footer {what}").into()))?;

    file.seek(SeekFrom::Start(0))?;
    let Ok(metadata) = read_metadata(&mut file) else {
        return Ok(());
    };
    for (g, group) in metadata.row_groups.iter().enumerate() {
        for chunk in group.parquet_columns() {
            let column = chunk
                .descriptor()
                .path_in_schema
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(".");
            let bad = |what: String| {
                PolarsError::ComputeError(
                    format!("row group {g}, column `{column}`: {what}").into(),
                )
            };
            let declared = chunk.num_values();
            if declared < 0 {
                return Err(bad(format!("the column chunk declares {declared} values")));
            }
            let range = chunk.byte_range();
            if range.start > range.end || range.end > file_len {
                continue;
            }
            let mut bytes = vec![0; (range.end - range.start) as usize];
            file.seek(SeekFrom::Start(range.start))?;
            file.read_exact(&mut bytes)?;
            let max_page = bytes.len();
            let meta = PageMetaData::new(
                0,
                declared,
                chunk.compression(),
                chunk.descriptor().descriptor.clone(),
            );
            let pages = PageReader::new_with_page_meta(
                Cursor::new(polars_buffer::Buffer::from_vec(bytes)),
                meta,
                Vec::new(),
                max_page,
            );
            let mut seen: i64 = 0;
            for page in pages {
                let page = match page {
                    Ok(CompressedPage::Data(page)) => page,
                    Ok(CompressedPage::Dict(_)) => continue,
                    Err(_) => break,
                };
                let (values, nulls, rows) = match page.header() {
                    DataPageHeader::V1(h) => (h.num_values, 0, 0),
                    DataPageHeader::V2(h) => (h.num_values, h.num_nulls, h.num_rows),
                };
                if values < 0 || nulls < 0 || rows < 0 {
                    return Err(bad(format!(
                        "a data page declares a negative count ({values} values, {nulls} nulls, {rows} rows)"
                    )));
                }
                seen += i64::from(values);
                if seen > declared {
                    return Err(bad(format!(
                        "its data pages declare more values than the {declared} of the column chunk"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// How polars' footer reader reads a field it knows, whatever type the field
/// says it has.
#[derive(Clone, Copy)]
enum Kind {
    /// An integer (a varint).
    Varint,
    /// One byte.
    Byte,
    /// A length (a varint), then that many bytes.
    Bytes,
    /// A boolean field: its value is in the field's type, no byte follows.
    Bool,
    /// A struct with these known fields (the others are skipped).
    Struct(&'static [(i16, Kind)]),
    /// A list of these.
    List(&'static Kind),
}

use Kind::{Bool, Byte, Bytes, List, Struct, Varint};

// The fields polars 0.55 reads from a footer (`parquet.thrift`'s ids), with
// how it reads each: polars-parquet's handwritten_thrift/file_metadata_thrift.rs.
const EMPTY: &[(i16, Kind)] = &[];
const TIME_UNIT: &[(i16, Kind)] = &[(1, Struct(EMPTY)), (2, Struct(EMPTY)), (3, Struct(EMPTY))];
const TIME: &[(i16, Kind)] = &[(1, Bool), (2, Struct(TIME_UNIT))];
const DECIMAL: &[(i16, Kind)] = &[(1, Varint), (2, Varint)];
const INT: &[(i16, Kind)] = &[(1, Byte), (2, Bool)];
const LOGICAL_TYPE: &[(i16, Kind)] = &[
    (1, Struct(EMPTY)),
    (2, Struct(EMPTY)),
    (3, Struct(EMPTY)),
    (4, Struct(EMPTY)),
    (5, Struct(DECIMAL)),
    (6, Struct(EMPTY)),
    (7, Struct(TIME)),
    (8, Struct(TIME)),
    (10, Struct(INT)),
    (11, Struct(EMPTY)),
    (12, Struct(EMPTY)),
    (13, Struct(EMPTY)),
    (14, Struct(EMPTY)),
    (15, Struct(EMPTY)),
];
const SCHEMA_ELEMENT: &[(i16, Kind)] = &[
    (1, Varint),
    (2, Varint),
    (3, Varint),
    (4, Bytes),
    (5, Varint),
    (6, Varint),
    (7, Varint),
    (8, Varint),
    (9, Varint),
    (10, Struct(LOGICAL_TYPE)),
];
const STATISTICS: &[(i16, Kind)] = &[
    (1, Bytes),
    (2, Bytes),
    (3, Varint),
    (4, Varint),
    (5, Bytes),
    (6, Bytes),
    (7, Bool),
    (8, Bool),
];
const COLUMN_META_DATA: &[(i16, Kind)] = &[
    (1, Varint),
    (2, List(&Varint)),
    (3, List(&Bytes)),
    (4, Varint),
    (5, Varint),
    (6, Varint),
    (7, Varint),
    (9, Varint),
    (10, Varint),
    (11, Varint),
    (12, Struct(STATISTICS)),
    (14, Varint),
    (15, Varint),
];
const COLUMN_CHUNK: &[(i16, Kind)] = &[
    (1, Bytes),
    (2, Varint),
    (3, Struct(COLUMN_META_DATA)),
    (4, Varint),
    (5, Varint),
    (6, Varint),
    (7, Varint),
];
const SORTING_COLUMN: &[(i16, Kind)] = &[(1, Varint), (2, Bool), (3, Bool)];
const ROW_GROUP: &[(i16, Kind)] = &[
    (1, List(&Struct(COLUMN_CHUNK))),
    (2, Varint),
    (3, Varint),
    (4, List(&Struct(SORTING_COLUMN))),
    (5, Varint),
    (6, Varint),
    (7, Varint),
];
const KEY_VALUE: &[(i16, Kind)] = &[(1, Bytes), (2, Bytes)];
const COLUMN_ORDER: &[(i16, Kind)] = &[(1, Struct(EMPTY)), (2, Struct(EMPTY))];
const FILE_META_DATA: &[(i16, Kind)] = &[
    (1, Varint),
    (2, List(&Struct(SCHEMA_ELEMENT))),
    (3, Varint),
    (4, List(&Struct(ROW_GROUP))),
    (5, List(&Struct(KEY_VALUE))),
    (6, Bytes),
    (7, List(&Struct(COLUMN_ORDER))),
];

/// How deep polars' reader follows fields it skips.
const SKIP_DEPTH: u32 = 64;

/// Check that the lists of `footer` (a Parquet footer in Thrift's compact
/// encoding), as polars' reader finds them, declare no more elements in all
/// than the footer has bytes.
fn footer_lists_fit(footer: &[u8]) -> Result<(), String> {
    let mut walk = Walk {
        bytes: footer,
        at: 0,
        budget: footer.len() as u64,
    };
    match walk.fields(FILE_META_DATA, SKIP_DEPTH) {
        Err(Stop::TooLong(what)) => Err(what),
        Ok(()) | Err(Stop::Unreadable) => Ok(()),
    }
}

/// Why a walk over a footer stopped early.
enum Stop {
    /// A list the footer cannot hold: the answer.
    TooLong(String),
    /// Bytes polars' reader refuses too (it says why).
    Unreadable,
}

/// A position in a footer, and how many list elements may still be declared.
struct Walk<'a> {
    bytes: &'a [u8],
    at: usize,
    budget: u64,
}

impl Walk<'_> {
    fn byte(&mut self) -> Result<u8, Stop> {
        let byte = *self.bytes.get(self.at).ok_or(Stop::Unreadable)?;
        self.at += 1;
        Ok(byte)
    }

    fn skip(&mut self, n: u64) -> Result<(), Stop> {
        if n > (self.bytes.len() - self.at) as u64 {
            return Err(Stop::Unreadable);
        }
        self.at += n as usize;
        Ok(())
    }

    /// A varint, as polars reads it (any length; bits past 64 wrap).
    fn varint(&mut self) -> Result<u64, Stop> {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f).wrapping_shl(shift);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift = shift.wrapping_add(7);
        }
    }

    fn bytes(&mut self) -> Result<(), Stop> {
        let len = self.varint()?;
        self.skip(len)
    }

    /// A list's header: its element type and how many elements it declares,
    /// charged to the budget.
    fn list_header(&mut self) -> Result<(u8, u64), Stop> {
        let header = self.byte()?;
        let (short, element) = (header >> 4, header & 0x0f);
        if (short != 0 || element != 0) && !(1..=12).contains(&element) {
            return Err(Stop::Unreadable);
        }
        // polars keeps the count as an i32: a longer varint is cut, a
        // negative count is an empty list.
        let count = match short {
            15 => self.varint()? as i32,
            n => i32::from(n),
        };
        let count = count.max(0) as u64;
        if count > self.budget {
            return Err(Stop::TooLong(format!(
                "declares a list of {count} elements, more than its {} bytes can hold",
                self.bytes.len()
            )));
        }
        self.budget -= count;
        Ok((element, count))
    }

    /// The fields of a struct whose known fields are `known`, up to its stop.
    fn fields(&mut self, known: &[(i16, Kind)], depth: u32) -> Result<(), Stop> {
        if depth == 0 {
            return Err(Stop::Unreadable);
        }
        let mut last_id = 0i16;
        loop {
            let header = self.byte()?;
            let (delta, kind) = (header >> 4, header & 0x0f);
            if kind == 0 {
                return Ok(());
            }
            if kind > 12 {
                return Err(Stop::Unreadable);
            }
            let id = if delta != 0 {
                last_id
                    .checked_add(i16::from(delta))
                    .ok_or(Stop::Unreadable)?
            } else {
                // The id in full: a zigzag varint.
                let z = self.varint()?;
                ((z >> 1) as i64 ^ -((z & 1) as i64)) as i16
            };
            match known.iter().find(|(k, _)| *k == id) {
                Some(&(_, kind)) => self.known(kind, depth - 1)?,
                None => self.skipped(kind, depth - 1)?,
            }
            last_id = id;
        }
    }

    /// A field polars knows, read as it reads it.
    fn known(&mut self, kind: Kind, depth: u32) -> Result<(), Stop> {
        match kind {
            Varint => self.varint().map(drop),
            Byte => self.skip(1),
            Bytes => self.bytes(),
            Bool => Ok(()),
            Struct(known) => self.fields(known, depth),
            List(element) => {
                let (_, count) = self.list_header()?;
                for _ in 0..count {
                    self.known(*element, depth)?;
                }
                Ok(())
            }
        }
    }

    /// A value of compact type `kind` that polars skips, as it skips it: a
    /// boolean takes no byte, in a list or not.
    fn skipped(&mut self, kind: u8, depth: u32) -> Result<(), Stop> {
        if depth == 0 {
            return Err(Stop::Unreadable);
        }
        match kind {
            1 | 2 => Ok(()),
            3 => self.skip(1),
            4..=6 => self.varint().map(drop),
            7 => self.skip(8),
            8 => self.bytes(),
            9 => {
                let (element, count) = self.list_header()?;
                for _ in 0..count {
                    self.skipped(element, depth - 1)?;
                }
                Ok(())
            }
            12 => self.fields(EMPTY, depth),
            _ => Err(Stop::Unreadable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_lists_are_charged_as_polars_finds_them() {
        // FileMetaData { 1: version = 1, 4: row_groups = list of 2^31 - 1
        // structs }: a few bytes asking polars for ~2^31 row groups.
        let footer = [0x15, 0x02, 0x39, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00];
        let err = footer_lists_fit(&footer).unwrap_err();
        assert!(
            err.contains("declares a list of 2147483647 elements, more than its 10 bytes"),
            "{err}"
        );
        // Field 4 declared as a binary is still read as the list polars expects.
        let footer = [0x15, 0x02, 0x38, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00];
        assert!(footer_lists_fit(&footer).is_err());
        // An unknown field 20 holding a list of 2^31 - 1 booleans, which
        // polars skips without reading a byte.
        let footer = [0x09, 0x28, 0xf1, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00];
        assert!(footer_lists_fit(&footer).is_err());
        // A schema list of one empty element fits; a footer cut short is
        // polars' to report.
        let footer = [0x15, 0x02, 0x19, 0x1c, 0x00, 0x00];
        assert!(footer_lists_fit(&footer).is_ok());
        assert!(footer_lists_fit(&[0x15]).is_ok());
    }
}
