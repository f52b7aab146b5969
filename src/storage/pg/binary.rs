//! The binary COPY format, both ways, column by column.
//!
//! Binary COPY is what makes `load` and `push` fast and exact: the server
//! neither prints nor parses numbers and timestamps as text, and values come
//! and go bit for bit (floats included). The stream is a fixed header, then per
//! row a 16-bit field count and per field a 32-bit length (-1 for NULL) and the
//! value in the type's `send`/`recv` form, then a trailer of -1 (see the
//! Postgres manual, "COPY — Binary Format").
//!
//! [`ColumnDecoder`] turns fields of one column into a polars column, a batch at a
//! time; [`ColumnEncoder`] turns a polars column into fields.

use polars::prelude::*;

use super::types::PgType;

/// The 11-byte signature that starts every binary COPY stream.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Days from 1970-01-01 (polars' epoch) to 2000-01-01 (Postgres' epoch).
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds between the two epochs.
const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS as i64 * 86_400_000_000;

/// Sign words of the numeric `send` form.
const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

// ---------------------------------------------------------------- reading

/// What [`RowParser::next_row`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Parsed {
    /// A row was decoded; its values took this many bytes.
    Row(usize),
    /// The buffered bytes end inside a row: feed more.
    NeedMore,
    /// The end-of-data marker: there are no more rows.
    End,
}

/// Parses a binary COPY stream fed in chunks of any size.
///
/// Rows are decoded straight from the buffered bytes; only a row cut by a
/// chunk boundary is copied, to join it with the next chunk.
pub(super) struct RowParser {
    buffer: Vec<u8>,
    position: usize,
    header_done: bool,
}

impl RowParser {
    /// A parser expecting the stream's header first.
    pub(super) fn new() -> RowParser {
        RowParser {
            buffer: Vec::new(),
            position: 0,
            header_done: false,
        }
    }

    /// Add the next piece of the stream.
    pub(super) fn feed(&mut self, chunk: Vec<u8>) {
        if self.position == self.buffer.len() {
            self.buffer = chunk;
        } else {
            self.buffer.drain(..self.position);
            self.buffer.extend_from_slice(&chunk);
        }
        self.position = 0;
    }

    /// Decode the next complete row into `columns`.
    pub(super) fn next_row(&mut self, columns: &mut [ColumnDecoder]) -> Result<Parsed, String> {
        if !self.header_done {
            let rest = &self.buffer[self.position..];
            if rest.len() < SIGNATURE.len() + 8 {
                return Ok(Parsed::NeedMore);
            }
            if &rest[..SIGNATURE.len()] != SIGNATURE {
                return Err("the server did not send a binary COPY header".to_string());
            }
            let extension = be_i32(&rest[15..19]).max(0) as usize;
            let header = SIGNATURE.len() + 8 + extension;
            if rest.len() < header {
                return Ok(Parsed::NeedMore);
            }
            self.position += header;
            self.header_done = true;
        }
        let rest = &self.buffer[self.position..];
        if rest.len() < 2 {
            return Ok(Parsed::NeedMore);
        }
        let count = i16::from_be_bytes([rest[0], rest[1]]);
        if count == -1 {
            self.position += 2;
            return Ok(Parsed::End);
        }
        if count as usize != columns.len() {
            return Err(format!(
                "the server sent a row of {count} fields for {} columns",
                columns.len()
            ));
        }
        // First make sure the whole row is here, then decode it in place.
        let mut end = 2;
        for _ in 0..count {
            if rest.len() < end + 4 {
                return Ok(Parsed::NeedMore);
            }
            end += 4 + be_i32(&rest[end..end + 4]).max(0) as usize;
        }
        if rest.len() < end {
            return Ok(Parsed::NeedMore);
        }
        let mut offset = 2;
        let mut bytes = 0;
        for column in columns.iter_mut() {
            let len = be_i32(&rest[offset..offset + 4]);
            offset += 4;
            if len < 0 {
                column.push_null();
                continue;
            }
            let len = len as usize;
            column
                .push(&rest[offset..offset + len])
                .map_err(|e| format!("column `{}`: {e}", column.name))?;
            offset += len;
            bytes += len;
        }
        self.position += end;
        Ok(Parsed::Row(bytes))
    }
}

fn be_i32(bytes: &[u8]) -> i32 {
    i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", bytes.len()))
}

/// Builds one polars column from a column's binary fields, a batch at a time.
pub(super) struct ColumnDecoder {
    name: PlSmallStr,
    values: Values,
    capacity: usize,
}

enum Values {
    Bool(BooleanChunkedBuilder),
    Int2(PrimitiveChunkedBuilder<Int16Type>),
    Int4(PrimitiveChunkedBuilder<Int32Type>),
    Int8(PrimitiveChunkedBuilder<Int64Type>),
    Float4(PrimitiveChunkedBuilder<Float32Type>),
    Float8(PrimitiveChunkedBuilder<Float64Type>),
    Decimal(PrimitiveChunkedBuilder<Int128Type>, usize, usize),
    NumericAsFloat(PrimitiveChunkedBuilder<Float64Type>),
    Text(StringChunkedBuilder),
    Date(PrimitiveChunkedBuilder<Int32Type>),
    Time(PrimitiveChunkedBuilder<Int64Type>),
    Timestamp(PrimitiveChunkedBuilder<Int64Type>, Option<TimeZone>),
}

impl Values {
    fn new(kind: &PgType, name: &PlSmallStr, capacity: usize) -> Values {
        let name = name.clone();
        match kind {
            PgType::Bool => Values::Bool(BooleanChunkedBuilder::new(name, capacity)),
            PgType::Int2 => Values::Int2(PrimitiveChunkedBuilder::new(name, capacity)),
            PgType::Int4 => Values::Int4(PrimitiveChunkedBuilder::new(name, capacity)),
            PgType::Int8 => Values::Int8(PrimitiveChunkedBuilder::new(name, capacity)),
            PgType::Float4 => Values::Float4(PrimitiveChunkedBuilder::new(name, capacity)),
            PgType::Float8 => Values::Float8(PrimitiveChunkedBuilder::new(name, capacity)),
            PgType::Numeric(Some((precision, scale))) => Values::Decimal(
                PrimitiveChunkedBuilder::new(name, capacity),
                *precision,
                *scale,
            ),
            PgType::Numeric(None) => {
                Values::NumericAsFloat(PrimitiveChunkedBuilder::new(name, capacity))
            }
            PgType::Text | PgType::Other(_) => {
                Values::Text(StringChunkedBuilder::new(name, capacity))
            }
            PgType::Date => Values::Date(PrimitiveChunkedBuilder::new(name, capacity)),
            PgType::Time => Values::Time(PrimitiveChunkedBuilder::new(name, capacity)),
            PgType::Timestamp => {
                Values::Timestamp(PrimitiveChunkedBuilder::new(name, capacity), None)
            }
            PgType::Timestamptz => Values::Timestamp(
                PrimitiveChunkedBuilder::new(name, capacity),
                Some(TimeZone::UTC),
            ),
        }
    }
}

impl ColumnDecoder {
    /// A decoder for column `name` of type `kind`, with room for `capacity` rows per batch.
    pub(super) fn new(name: &str, kind: &PgType, capacity: usize) -> ColumnDecoder {
        let name = PlSmallStr::from_str(name);
        ColumnDecoder {
            values: Values::new(kind, &name, capacity),
            name,
            capacity,
        }
    }

    fn push_null(&mut self) {
        match &mut self.values {
            Values::Bool(b) => b.append_null(),
            Values::Int2(b) => b.append_null(),
            Values::Int4(b) => b.append_null(),
            Values::Int8(b) | Values::Time(b) | Values::Timestamp(b, _) => b.append_null(),
            Values::Float4(b) => b.append_null(),
            Values::Float8(b) | Values::NumericAsFloat(b) => b.append_null(),
            Values::Decimal(b, _, _) => b.append_null(),
            Values::Text(b) => b.append_null(),
            Values::Date(b) => b.append_null(),
        }
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), String> {
        match &mut self.values {
            Values::Bool(b) => b.append_value(fixed::<1>(bytes)?[0] != 0),
            Values::Int2(b) => b.append_value(i16::from_be_bytes(fixed(bytes)?)),
            Values::Int4(b) => b.append_value(i32::from_be_bytes(fixed(bytes)?)),
            Values::Int8(b) => b.append_value(i64::from_be_bytes(fixed(bytes)?)),
            Values::Float4(b) => b.append_value(f32::from_be_bytes(fixed(bytes)?)),
            Values::Float8(b) => b.append_value(f64::from_be_bytes(fixed(bytes)?)),
            Values::Decimal(b, _, scale) => {
                b.append_value(Numeric::parse(bytes)?.to_scaled_i128(*scale)?)
            }
            Values::NumericAsFloat(b) => b.append_value(Numeric::parse(bytes)?.to_f64()),
            Values::Text(b) => b.append_value(
                std::str::from_utf8(bytes).map_err(|e| format!("text is not UTF-8: {e}"))?,
            ),
            Values::Date(b) => {
                let days = i32::from_be_bytes(fixed(bytes)?);
                if days == i32::MAX || days == i32::MIN {
                    return Err(
                        "the date `infinity` has no Parquet counterpart; filter it out or cast the column"
                            .to_string(),
                    );
                }
                b.append_value(
                    days.checked_add(PG_EPOCH_DAYS).ok_or_else(|| {
                        format!("date {days} days after 2000-01-01 is out of range")
                    })?,
                )
            }
            Values::Time(b) => {
                // Postgres counts microseconds since midnight, polars nanoseconds.
                b.append_value(i64::from_be_bytes(fixed(bytes)?) * 1000)
            }
            Values::Timestamp(b, _) => {
                let micros = i64::from_be_bytes(fixed(bytes)?);
                if micros == i64::MAX || micros == i64::MIN {
                    return Err(
                        "the timestamp `infinity` has no Parquet counterpart; filter it out or cast the column"
                            .to_string(),
                    );
                }
                b.append_value(micros + PG_EPOCH_MICROS)
            }
        }
        Ok(())
    }

    /// The rows decoded since the last call, as a column; the decoder starts a new batch.
    pub(super) fn take_batch(&mut self) -> Column {
        let fresh = Values::new(&self.kind(), &self.name, self.capacity);
        let series = match std::mem::replace(&mut self.values, fresh) {
            Values::Bool(b) => b.finish().into_series(),
            Values::Int2(b) => b.finish().into_series(),
            Values::Int4(b) => b.finish().into_series(),
            Values::Int8(b) => b.finish().into_series(),
            Values::Float4(b) => b.finish().into_series(),
            Values::Float8(b) | Values::NumericAsFloat(b) => b.finish().into_series(),
            Values::Decimal(b, precision, scale) => b
                .finish()
                .into_decimal_unchecked(precision, scale)
                .into_series(),
            Values::Text(b) => b.finish().into_series(),
            Values::Date(b) => b.finish().into_date().into_series(),
            Values::Time(b) => b.finish().into_time().into_series(),
            Values::Timestamp(b, zone) => b
                .finish()
                .into_datetime(TimeUnit::Microseconds, zone)
                .into_series(),
        };
        series.into_column()
    }

    /// The type this decoder was made for (enough of it to make a fresh builder).
    fn kind(&self) -> PgType {
        match &self.values {
            Values::Bool(_) => PgType::Bool,
            Values::Int2(_) => PgType::Int2,
            Values::Int4(_) => PgType::Int4,
            Values::Int8(_) => PgType::Int8,
            Values::Float4(_) => PgType::Float4,
            Values::Float8(_) => PgType::Float8,
            Values::Decimal(_, precision, scale) => PgType::Numeric(Some((*precision, *scale))),
            Values::NumericAsFloat(_) => PgType::Numeric(None),
            Values::Text(_) => PgType::Text,
            Values::Date(_) => PgType::Date,
            Values::Time(_) => PgType::Time,
            Values::Timestamp(_, None) => PgType::Timestamp,
            Values::Timestamp(_, Some(_)) => PgType::Timestamptz,
        }
    }
}

/// A `numeric` in its `send` form: base-10000 digits, the power of 10000 of
/// the first digit (`weight`), and a sign word.
#[derive(Debug, PartialEq)]
struct Numeric {
    digits: Vec<i16>,
    weight: i16,
    sign: u16,
}

impl Numeric {
    fn parse(bytes: &[u8]) -> Result<Numeric, String> {
        if bytes.len() < 8 {
            return Err(format!("a numeric of {} bytes is truncated", bytes.len()));
        }
        let word = |i: usize| [bytes[2 * i], bytes[2 * i + 1]];
        let count = i16::from_be_bytes(word(0)).max(0) as usize;
        if bytes.len() != 8 + 2 * count {
            return Err(format!(
                "a numeric of {count} digits needs {} bytes, got {}",
                8 + 2 * count,
                bytes.len()
            ));
        }
        Ok(Numeric {
            weight: i16::from_be_bytes(word(1)),
            sign: u16::from_be_bytes(word(2)),
            digits: (0..count)
                .map(|i| i16::from_be_bytes(word(4 + i)))
                .collect(),
        })
    }

    /// The value times `10^scale`, exactly, for a polars decimal of that scale.
    ///
    /// Walks the decimal digits from the most significant down to `10^-scale`:
    /// `acc = acc·10 + d`, so no intermediate is larger than the result.
    fn to_scaled_i128(&self, scale: usize) -> Result<i128, String> {
        match self.sign {
            NUMERIC_NAN => return Err("NaN has no decimal counterpart".to_string()),
            NUMERIC_PINF | NUMERIC_NINF => {
                return Err("infinity has no decimal counterpart".to_string())
            }
            _ => {}
        }
        let overflow = || format!("value does not fit a decimal of scale {scale}");
        let lowest = -(scale as i32);
        let mut acc: i128 = 0;
        let mut next_exponent = None;
        for (i, &group) in self.digits.iter().enumerate() {
            // Decimal exponent of the group's last digit.
            let group_exponent = 4 * (self.weight as i32 - i as i32);
            for k in (0..4).rev() {
                let exponent = group_exponent + k;
                let digit = (group as i32 / 10i32.pow(k as u32)) % 10;
                if exponent < lowest {
                    if digit != 0 {
                        return Err(format!("value has more than {scale} decimal places"));
                    }
                    continue;
                }
                acc = acc
                    .checked_mul(10)
                    .and_then(|a| a.checked_add(digit as i128))
                    .ok_or_else(overflow)?;
            }
            next_exponent = Some(group_exponent - 1);
        }
        // Zeros from after the last digit down to 10^-scale.
        if let Some(next) = next_exponent.filter(|&n| n >= lowest) {
            let zeros = (next - lowest + 1) as u32;
            acc = 10i128
                .checked_pow(zeros)
                .and_then(|p| acc.checked_mul(p))
                .ok_or_else(overflow)?;
        }
        Ok(if self.sign == NUMERIC_NEG { -acc } else { acc })
    }

    /// The nearest f64: the digits are written out and parsed, which rounds correctly.
    fn to_f64(&self) -> f64 {
        match self.sign {
            NUMERIC_NAN => return f64::NAN,
            NUMERIC_PINF => return f64::INFINITY,
            NUMERIC_NINF => return f64::NEG_INFINITY,
            _ => {}
        }
        if self.digits.is_empty() {
            return 0.0;
        }
        let mut text = String::with_capacity(4 * self.digits.len() + 8);
        if self.sign == NUMERIC_NEG {
            text.push('-');
        }
        for group in &self.digits {
            text.push_str(&format!("{group:04}"));
        }
        let exponent = 4 * (self.weight as i32 - self.digits.len() as i32 + 1);
        text.push_str(&format!("e{exponent}"));
        text.parse().unwrap_or(f64::NAN)
    }

    /// The `send` form of the decimal number `digits · 10^-scale` (digits are ASCII, no sign).
    fn from_decimal_digits(negative: bool, digits: &str, scale: usize) -> Numeric {
        // Pad on the right so the last digit sits at a multiple-of-4 exponent,
        // and on the left to whole groups of four.
        let pad_right = (4 - scale % 4) % 4;
        let len = digits.len() + pad_right;
        let pad_left = (4 - len % 4) % 4;
        let padded: Vec<u8> = std::iter::repeat_n(b'0', pad_left)
            .chain(digits.bytes())
            .chain(std::iter::repeat_n(b'0', pad_right))
            .collect();
        let mut groups: Vec<i16> = padded
            .chunks(4)
            .map(|chunk| {
                chunk
                    .iter()
                    .fold(0i16, |acc, d| acc * 10 + (d - b'0') as i16)
            })
            .collect();
        let lowest_group = -((scale + pad_right) as i32 / 4);
        let mut weight = lowest_group + groups.len() as i32 - 1;
        let leading = groups.iter().take_while(|&&g| g == 0).count();
        groups.drain(..leading);
        weight -= leading as i32;
        while groups.last() == Some(&0) {
            groups.pop();
        }
        if groups.is_empty() {
            return Numeric {
                digits: Vec::new(),
                weight: 0,
                sign: NUMERIC_POS,
            };
        }
        Numeric {
            digits: groups,
            weight: weight as i16,
            sign: if negative { NUMERIC_NEG } else { NUMERIC_POS },
        }
    }

    fn from_scaled_i128(value: i128, scale: usize) -> Numeric {
        Numeric::from_decimal_digits(value < 0, &value.unsigned_abs().to_string(), scale)
    }

    /// The `send` form of `value` and its display scale (digits after the point).
    fn from_f64(value: f64) -> (Numeric, usize) {
        if !value.is_finite() {
            let sign = match value {
                v if v.is_nan() => NUMERIC_NAN,
                v if v > 0.0 => NUMERIC_PINF,
                _ => NUMERIC_NINF,
            };
            let special = Numeric {
                digits: Vec::new(),
                weight: 0,
                sign,
            };
            return (special, 0);
        }
        // `Display` of f64 is the shortest text that reads back as the same
        // double, always positional (never `1e-7`).
        let text = value.abs().to_string();
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let digits = format!("{whole}{fraction}");
        let numeric = Numeric::from_decimal_digits(value < 0.0, &digits, fraction.len());
        (numeric, fraction.len())
    }

    /// Append as a field: length, digit count, weight, sign, display scale, digits.
    fn write(&self, display_scale: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(&(8 + 2 * self.digits.len() as i32).to_be_bytes());
        out.extend_from_slice(&(self.digits.len() as i16).to_be_bytes());
        out.extend_from_slice(&self.weight.to_be_bytes());
        out.extend_from_slice(&self.sign.to_be_bytes());
        out.extend_from_slice(&(display_scale.min(16_383) as u16).to_be_bytes());
        for digit in &self.digits {
            out.extend_from_slice(&digit.to_be_bytes());
        }
    }
}

// ---------------------------------------------------------------- writing

/// Append the stream header.
pub(super) fn write_header(out: &mut Vec<u8>) {
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
    out.extend_from_slice(&0i32.to_be_bytes()); // no header extension
}

/// Append the start of a row of `columns` fields.
pub(super) fn write_row_start(columns: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&(columns as i16).to_be_bytes());
}

/// Append the end-of-data marker.
pub(super) fn write_trailer(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i16).to_be_bytes());
}

/// One polars column, prepared to be written as fields of a Postgres type.
pub(super) enum ColumnEncoder {
    Bool(BooleanChunked),
    Int2(Int16Chunked),
    Int4(Int32Chunked),
    Int8(Int64Chunked),
    Float4(Float32Chunked),
    Float8(Float64Chunked),
    /// Decimal values as integers times `10^scale`.
    NumericFromDecimal(Int128Chunked, usize),
    NumericFromFloat(Float64Chunked),
    Text(StringChunked),
    /// Days since 1970-01-01.
    Date(Int32Chunked),
    /// Nanoseconds since midnight.
    Time(Int64Chunked),
    /// Instants since 1970-01-01 in the given unit.
    Timestamp(Int64Chunked, TimeUnit),
}

impl ColumnEncoder {
    /// Prepare `column` to fill a column of type `target`, converting it where
    /// needed (a conversion that would lose values is an error).
    pub(super) fn new(column: &Series, target: &PgType) -> Result<ColumnEncoder, String> {
        let cast = |dtype: DataType| {
            column
                .strict_cast(&dtype)
                .map(|s| s.rechunk())
                .map_err(|e| format!("cannot be converted to {}: {e}", target.sql_name()))
        };
        let physical = |s: &Series| s.to_physical_repr().into_owned().rechunk();
        Ok(match target {
            PgType::Bool => ColumnEncoder::Bool(cast(DataType::Boolean)?.bool().unwrap().clone()),
            PgType::Int2 => ColumnEncoder::Int2(cast(DataType::Int16)?.i16().unwrap().clone()),
            PgType::Int4 => ColumnEncoder::Int4(cast(DataType::Int32)?.i32().unwrap().clone()),
            PgType::Int8 => ColumnEncoder::Int8(cast(DataType::Int64)?.i64().unwrap().clone()),
            PgType::Float4 => {
                ColumnEncoder::Float4(cast(DataType::Float32)?.f32().unwrap().clone())
            }
            PgType::Float8 => {
                ColumnEncoder::Float8(cast(DataType::Float64)?.f64().unwrap().clone())
            }
            // Postgres rounds to the column's scale (and rejects overflow) on
            // receipt, so any exact representation will do here.
            PgType::Numeric(_) => match column.dtype() {
                DataType::Decimal(_, scale) => ColumnEncoder::NumericFromDecimal(
                    physical(column).i128().unwrap().clone(),
                    *scale,
                ),
                dtype if dtype.is_integer() => {
                    let as_decimal = cast(DataType::Decimal(38, 0))?;
                    ColumnEncoder::NumericFromDecimal(
                        physical(&as_decimal).i128().unwrap().clone(),
                        0,
                    )
                }
                _ => {
                    ColumnEncoder::NumericFromFloat(cast(DataType::Float64)?.f64().unwrap().clone())
                }
            },
            PgType::Text => ColumnEncoder::Text(cast(DataType::String)?.str().unwrap().clone()),
            PgType::Date => {
                ColumnEncoder::Date(physical(&cast(DataType::Date)?).i32().unwrap().clone())
            }
            PgType::Time => {
                ColumnEncoder::Time(physical(&cast(DataType::Time)?).i64().unwrap().clone())
            }
            PgType::Timestamp | PgType::Timestamptz => {
                // The physical value is the instant (UTC) whatever the zone, so
                // read it directly instead of converting between zones.
                let datetime = match column.dtype() {
                    DataType::Datetime(..) => column.clone(),
                    _ => cast(DataType::Datetime(TimeUnit::Microseconds, None))?,
                };
                let DataType::Datetime(unit, _) = datetime.dtype() else {
                    unreachable!("cast to a datetime")
                };
                ColumnEncoder::Timestamp(physical(&datetime).i64().unwrap().clone(), *unit)
            }
            PgType::Other(name) => {
                return Err(format!(
                    "is of type {name} in the table, which recsys pg push cannot fill"
                ))
            }
        })
    }

    /// Append row `row` of this column as one field.
    pub(super) fn write(&self, row: usize, out: &mut Vec<u8>) -> Result<(), String> {
        fn field(out: &mut Vec<u8>, bytes: &[u8]) {
            out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        fn null(out: &mut Vec<u8>) {
            out.extend_from_slice(&(-1i32).to_be_bytes());
        }
        macro_rules! put {
            ($value:expr, |$v:ident| $bytes:expr) => {
                match $value {
                    Some($v) => field(out, &$bytes),
                    None => null(out),
                }
            };
        }
        match self {
            ColumnEncoder::Bool(c) => put!(c.get(row), |v| [v as u8]),
            ColumnEncoder::Int2(c) => put!(c.get(row), |v| v.to_be_bytes()),
            ColumnEncoder::Int4(c) => put!(c.get(row), |v| v.to_be_bytes()),
            ColumnEncoder::Int8(c) => put!(c.get(row), |v| v.to_be_bytes()),
            ColumnEncoder::Float4(c) => put!(c.get(row), |v| v.to_be_bytes()),
            ColumnEncoder::Float8(c) => put!(c.get(row), |v| v.to_be_bytes()),
            ColumnEncoder::NumericFromDecimal(c, scale) => match c.get(row) {
                Some(v) => Numeric::from_scaled_i128(v, *scale).write(*scale, out),
                None => null(out),
            },
            ColumnEncoder::NumericFromFloat(c) => match c.get(row) {
                Some(v) => {
                    let (numeric, scale) = Numeric::from_f64(v);
                    numeric.write(scale, out)
                }
                None => null(out),
            },
            ColumnEncoder::Text(c) => put!(c.get(row), |v| v.as_bytes()),
            ColumnEncoder::Date(c) => put!(c.get(row), |v| (v - PG_EPOCH_DAYS).to_be_bytes()),
            ColumnEncoder::Time(c) => put!(c.get(row), |v| (v.div_euclid(1000)).to_be_bytes()),
            ColumnEncoder::Timestamp(c, unit) => match c.get(row) {
                Some(v) => {
                    let micros = match unit {
                        TimeUnit::Nanoseconds => Some(v.div_euclid(1000)),
                        TimeUnit::Microseconds => Some(v),
                        TimeUnit::Milliseconds => v.checked_mul(1000),
                    };
                    let since_pg_epoch = micros
                        .and_then(|m| m.checked_sub(PG_EPOCH_MICROS))
                        .ok_or_else(|| format!("row {}: timestamp {v} is out of range", row + 1))?;
                    field(out, &since_pg_epoch.to_be_bytes())
                }
                None => null(out),
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip_decimal(value: i128, scale: usize) {
        let numeric = Numeric::from_scaled_i128(value, scale);
        let mut bytes = Vec::new();
        numeric.write(scale, &mut bytes);
        let parsed = Numeric::parse(&bytes[4..]).unwrap();
        assert_eq!(parsed, numeric);
        assert_eq!(
            parsed.to_scaled_i128(scale).unwrap(),
            value,
            "{value} scale {scale}"
        );
    }

    #[test]
    fn numeric_digits_follow_the_send_format() {
        // 1.5 = 1·10000^0 + 5000·10000^-1
        let n = Numeric::from_scaled_i128(15, 1);
        assert_eq!(
            (n.digits.as_slice(), n.weight, n.sign),
            (&[1, 5000][..], 0, NUMERIC_POS)
        );
        // 12345678 = 1234·10000 + 5678
        let n = Numeric::from_scaled_i128(12_345_678, 0);
        assert_eq!((n.digits.as_slice(), n.weight), (&[1234, 5678][..], 1));
        // 0.0001 = 1·10000^-1
        let n = Numeric::from_scaled_i128(1, 4);
        assert_eq!((n.digits.as_slice(), n.weight), (&[1][..], -1));
        // 10000 = 1·10000^1, the trailing zero group dropped
        let n = Numeric::from_scaled_i128(1_000_000, 2);
        assert_eq!((n.digits.as_slice(), n.weight), (&[1][..], 1));
        let n = Numeric::from_scaled_i128(-123, 2);
        assert_eq!(
            (n.digits.as_slice(), n.weight, n.sign),
            (&[1, 2300][..], 0, NUMERIC_NEG)
        );
        assert!(Numeric::from_scaled_i128(0, 3).digits.is_empty());
    }

    #[test]
    fn decimals_round_trip_exactly() {
        for scale in [0, 1, 2, 3, 4, 5, 9, 18, 37, 38] {
            for value in [
                0i128,
                1,
                -1,
                7,
                10,
                9999,
                10_000,
                123_456_789,
                -987_654_321_012,
            ] {
                round_trip_decimal(value, scale);
            }
        }
        let widest = 10i128.pow(38) - 1;
        for scale in [0, 2, 17, 38] {
            round_trip_decimal(widest, scale);
            round_trip_decimal(-widest, scale);
        }
    }

    #[test]
    fn numeric_to_decimal_refuses_to_round_or_overflow() {
        // 1.25 read at scale 1 would lose a digit.
        let n = Numeric::from_scaled_i128(125, 2);
        assert!(n.to_scaled_i128(1).unwrap_err().contains("decimal places"));
        assert_eq!(n.to_scaled_i128(4).unwrap(), 12_500);
        let huge = Numeric::from_decimal_digits(false, &"9".repeat(39), 0);
        assert!(huge.to_scaled_i128(0).unwrap_err().contains("does not fit"));
        let (nan, _) = Numeric::from_f64(f64::NAN);
        assert!(nan.to_scaled_i128(2).unwrap_err().contains("NaN"));
    }

    #[test]
    fn floats_go_through_numeric_to_the_same_double() {
        for v in [
            0.0,
            1.5,
            -2.25,
            0.1,
            1e-7,
            123456.789,
            1e300,
            f64::MIN_POSITIVE,
            -0.3,
        ] {
            let (n, _) = Numeric::from_f64(v);
            assert_eq!(n.to_f64(), v, "{v}");
        }
        assert!(Numeric::from_f64(f64::NAN).0.to_f64().is_nan());
        assert_eq!(Numeric::from_f64(f64::INFINITY).0.to_f64(), f64::INFINITY);
    }

    #[test]
    fn rows_written_read_back_column_by_column() {
        let ints = Series::new("i".into(), [Some(1i64), None, Some(-3)]);
        let texts = Series::new("t".into(), [Some("a"), Some(""), None]);
        let encoders = [
            ColumnEncoder::new(&ints, &PgType::Int8).unwrap(),
            ColumnEncoder::new(&texts, &PgType::Text).unwrap(),
        ];
        let mut stream = Vec::new();
        write_header(&mut stream);
        for row in 0..3 {
            write_row_start(2, &mut stream);
            for encoder in &encoders {
                encoder.write(row, &mut stream).unwrap();
            }
        }
        write_trailer(&mut stream);

        let mut decoders = [
            ColumnDecoder::new("i", &PgType::Int8, 4),
            ColumnDecoder::new("t", &PgType::Text, 4),
        ];
        // Fed in awkward pieces: rows and even the header cut anywhere.
        let mut parser = RowParser::new();
        let mut rows = 0;
        for piece in stream.chunks(5) {
            parser.feed(piece.to_vec());
            loop {
                match parser.next_row(&mut decoders).unwrap() {
                    Parsed::Row(_) => rows += 1,
                    Parsed::NeedMore => break,
                    Parsed::End => break,
                }
            }
        }
        assert_eq!(rows, 3);
        let i = decoders[0].take_batch();
        let t = decoders[1].take_batch();
        assert!(i.as_materialized_series().equals_missing(&ints));
        assert!(t.as_materialized_series().equals_missing(&texts));
        // The decoder starts over after a batch.
        assert_eq!(decoders[0].take_batch().len(), 0);
    }

    #[test]
    fn dates_and_timestamps_shift_between_the_epochs() {
        let days = Series::new("d".into(), [10_957i32])
            .cast(&DataType::Date)
            .unwrap();
        let encoder = ColumnEncoder::new(&days, &PgType::Date).unwrap();
        let mut out = Vec::new();
        encoder.write(0, &mut out).unwrap();
        assert_eq!(
            &out[4..],
            &0i32.to_be_bytes(),
            "2000-01-01 is day 0 in Postgres"
        );

        let mut decoder = ColumnDecoder::new("ts", &PgType::Timestamptz, 1);
        decoder.push(&1_000_000i64.to_be_bytes()).unwrap();
        let column = decoder.take_batch();
        assert_eq!(
            column.dtype(),
            &DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        );
        let physical = column
            .as_materialized_series()
            .to_physical_repr()
            .into_owned();
        assert_eq!(
            physical.i64().unwrap().get(0),
            Some(PG_EPOCH_MICROS + 1_000_000)
        );
        let infinity = ColumnDecoder::new("ts", &PgType::Timestamp, 1)
            .push(&i64::MAX.to_be_bytes())
            .unwrap_err();
        assert!(infinity.contains("infinity"), "{infinity}");
    }
}
