//! Column types, both ways between Postgres and polars.
//!
//! One enum, [`PgType`], is the hub: a table column's catalog entry becomes a
//! `PgType`, which says what polars type its values load into; a file column's
//! polars type becomes the `PgType` its table column is created with. The
//! binary COPY codec (`binary.rs`) is written against `PgType` too, so the two
//! directions cannot drift apart.
//!
//! | Postgres | polars | note |
//! | --- | --- | --- |
//! | `boolean` | Boolean | |
//! | `smallint` / `integer` / `bigint` | Int16 / Int32 / Int64 | |
//! | `real` / `double precision` | Float32 / Float64 | |
//! | `numeric(p,s)`, p ≤ 38, 0 ≤ s ≤ p | Decimal(p,s) | exact |
//! | `numeric` (no precision), or p > 38 | Float64 | nearest double; says so |
//! | `text`, `varchar(n)`, `char(n)`, `name` | String | |
//! | `date` | Date | |
//! | `time` | Time | |
//! | `timestamp` | Datetime(µs) | |
//! | `timestamptz` | Datetime(µs, UTC) | the instant; the zone is not stored by Postgres |
//! | anything else (json, uuid, interval, arrays…) | String | Postgres's text form |

use polars::prelude::{DataType, TimeUnit, TimeZone};

/// Type oids from `pg_type.dat`; stable across Postgres versions.
mod oid {
    pub const BOOL: u32 = 16;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
}

/// Largest precision a polars (Arrow) decimal holds: 38 digits fit an i128.
const MAX_DECIMAL_PRECISION: usize = 38;

/// A column type as recsys moves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgType {
    /// `boolean`.
    Bool,
    /// `smallint`.
    Int2,
    /// `integer`.
    Int4,
    /// `bigint`.
    Int8,
    /// `real`.
    Float4,
    /// `double precision`.
    Float8,
    /// `numeric`; `Some((precision, scale))` when it fits a polars decimal
    /// exactly, `None` when it is loaded as the nearest f64.
    Numeric(Option<(usize, usize)>),
    /// `text` and the other character types.
    Text,
    /// `date`.
    Date,
    /// `time` (without time zone).
    Time,
    /// `timestamp` (without time zone).
    Timestamp,
    /// `timestamptz`.
    Timestamptz,
    /// Any other type, moved as its text form; holds the type's SQL name.
    Other(String),
}

impl PgType {
    /// The type of a table column from its catalog entry (`atttypid`,
    /// `atttypmod` and `format_type(…)`).
    pub fn from_catalog(type_oid: u32, typmod: i32, sql_name: &str) -> PgType {
        match type_oid {
            oid::BOOL => PgType::Bool,
            oid::INT2 => PgType::Int2,
            oid::INT4 => PgType::Int4,
            oid::INT8 => PgType::Int8,
            oid::FLOAT4 => PgType::Float4,
            oid::FLOAT8 => PgType::Float8,
            oid::NUMERIC => PgType::Numeric(decimal_of_typmod(typmod)),
            oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME => PgType::Text,
            oid::DATE => PgType::Date,
            oid::TIME => PgType::Time,
            oid::TIMESTAMP => PgType::Timestamp,
            oid::TIMESTAMPTZ => PgType::Timestamptz,
            _ => PgType::Other(sql_name.to_string()),
        }
    }

    /// The table column type for a file column of polars type `dtype`, or why there is none.
    pub fn for_polars(dtype: &DataType) -> Result<PgType, String> {
        Ok(match dtype {
            DataType::Boolean => PgType::Bool,
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => PgType::Int2,
            DataType::Int32 | DataType::UInt16 => PgType::Int4,
            DataType::Int64 | DataType::UInt32 => PgType::Int8,
            // The widest unsigned value needs 20 digits; numeric holds it exactly.
            DataType::UInt64 => PgType::Numeric(Some((20, 0))),
            DataType::Float32 => PgType::Float4,
            DataType::Float64 => PgType::Float8,
            DataType::Decimal(precision, scale) => PgType::Numeric(Some((*precision, *scale))),
            DataType::String | DataType::Categorical(..) | DataType::Enum(..) | DataType::Null => {
                PgType::Text
            }
            DataType::Date => PgType::Date,
            DataType::Time => PgType::Time,
            DataType::Datetime(_, None) => PgType::Timestamp,
            DataType::Datetime(_, Some(_)) => PgType::Timestamptz,
            other => {
                return Err(format!(
                    "recsys pg push cannot store in a table (supported: booleans, integers, floats, decimals, text, dates, times, datetimes); convert the column first (found {other})"
                ))
            }
        })
    }

    /// The polars type its values load into.
    pub fn polars_dtype(&self) -> DataType {
        match self {
            PgType::Bool => DataType::Boolean,
            PgType::Int2 => DataType::Int16,
            PgType::Int4 => DataType::Int32,
            PgType::Int8 => DataType::Int64,
            PgType::Float4 => DataType::Float32,
            PgType::Float8 | PgType::Numeric(None) => DataType::Float64,
            PgType::Numeric(Some((precision, scale))) => DataType::Decimal(*precision, *scale),
            PgType::Text | PgType::Other(_) => DataType::String,
            PgType::Date => DataType::Date,
            PgType::Time => DataType::Time,
            PgType::Timestamp => DataType::Datetime(TimeUnit::Microseconds, None),
            PgType::Timestamptz => DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
        }
    }

    /// The type as written in `CREATE TABLE`.
    pub fn sql_name(&self) -> String {
        match self {
            PgType::Bool => "boolean".into(),
            PgType::Int2 => "smallint".into(),
            PgType::Int4 => "integer".into(),
            PgType::Int8 => "bigint".into(),
            PgType::Float4 => "real".into(),
            PgType::Float8 => "double precision".into(),
            PgType::Numeric(Some((precision, scale))) => format!("numeric({precision},{scale})"),
            PgType::Numeric(None) => "numeric".into(),
            PgType::Text => "text".into(),
            PgType::Date => "date".into(),
            PgType::Time => "time".into(),
            PgType::Timestamp => "timestamp".into(),
            PgType::Timestamptz => "timestamptz".into(),
            PgType::Other(name) => name.clone(),
        }
    }

    /// True when the column is copied out as its text form (`col::text`),
    /// because recsys has no binary decoder for the type.
    pub fn copied_as_text(&self) -> bool {
        matches!(self, PgType::Other(_))
    }

    /// A note for the user when loading changes how values are represented.
    pub fn load_note(&self) -> Option<String> {
        match self {
            PgType::Numeric(None) => Some(
                "numeric without a precision up to 38 digits is saved as float64 (nearest double)"
                    .to_string(),
            ),
            PgType::Other(name) => Some(format!("{name} is saved as text")),
            _ => None,
        }
    }
}

/// `(precision, scale)` of a `numeric(p,s)` typmod when a polars decimal holds it exactly.
///
/// The typmod packs `((precision << 16) | scale) + 4` (VARHDRSZ); -1 means no
/// precision was given. Postgres 15 allows a negative scale or one larger
/// than the precision; those have no decimal counterpart and load as f64.
fn decimal_of_typmod(typmod: i32) -> Option<(usize, usize)> {
    if typmod < 4 {
        return None;
    }
    let packed = typmod - 4;
    let precision = ((packed >> 16) & 0xffff) as usize;
    // The scale is an 11-bit two's-complement field.
    let scale = ((packed & 0x7ff) ^ 1024) - 1024;
    let scale = usize::try_from(scale).ok()?;
    (1..=MAX_DECIMAL_PRECISION)
        .contains(&precision)
        .then_some(())
        .filter(|_| scale <= precision)
        .map(|_| (precision, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typmod(precision: i32, scale: i32) -> i32 {
        ((precision << 16) | (scale & 0x7ff)) + 4
    }

    #[test]
    fn numeric_typmods_become_decimals_only_when_exact() {
        assert_eq!(decimal_of_typmod(typmod(12, 2)), Some((12, 2)));
        assert_eq!(decimal_of_typmod(typmod(38, 38)), Some((38, 38)));
        assert_eq!(decimal_of_typmod(typmod(5, 0)), Some((5, 0)));
        assert_eq!(decimal_of_typmod(-1), None, "unconstrained numeric");
        assert_eq!(decimal_of_typmod(typmod(39, 2)), None, "too wide for i128");
        assert_eq!(decimal_of_typmod(typmod(3, -2)), None, "negative scale");
        assert_eq!(
            decimal_of_typmod(typmod(2, 5)),
            None,
            "scale above precision"
        );
    }

    #[test]
    fn catalog_types_map_to_polars_types() {
        let cases = [
            (oid::BOOL, -1, DataType::Boolean),
            (oid::INT2, -1, DataType::Int16),
            (oid::INT4, -1, DataType::Int32),
            (oid::INT8, -1, DataType::Int64),
            (oid::FLOAT4, -1, DataType::Float32),
            (oid::FLOAT8, -1, DataType::Float64),
            (oid::NUMERIC, typmod(10, 3), DataType::Decimal(10, 3)),
            (oid::NUMERIC, -1, DataType::Float64),
            (oid::VARCHAR, 20, DataType::String),
            (oid::DATE, -1, DataType::Date),
            (
                oid::TIMESTAMP,
                -1,
                DataType::Datetime(TimeUnit::Microseconds, None),
            ),
            (
                oid::TIMESTAMPTZ,
                -1,
                DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
            ),
            (2950, -1, DataType::String), // uuid, as text
        ];
        for (type_oid, typmod, expected) in cases {
            let pg = PgType::from_catalog(type_oid, typmod, "x");
            assert_eq!(pg.polars_dtype(), expected, "oid {type_oid}");
        }
        assert!(PgType::from_catalog(2950, -1, "uuid").copied_as_text());
    }

    #[test]
    fn file_types_round_trip_through_the_table_type() {
        let round_trips = [
            DataType::Boolean,
            DataType::Int16,
            DataType::Int32,
            DataType::Int64,
            DataType::Float32,
            DataType::Float64,
            DataType::Decimal(12, 2),
            DataType::String,
            DataType::Date,
            DataType::Time,
            DataType::Datetime(TimeUnit::Microseconds, None),
            DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
        ];
        for dtype in round_trips {
            let pg = PgType::for_polars(&dtype).unwrap();
            assert_eq!(pg.polars_dtype(), dtype, "{}", pg.sql_name());
        }
        // Wider or coarser types are stored in the nearest column type that holds them.
        assert_eq!(
            PgType::for_polars(&DataType::Datetime(TimeUnit::Milliseconds, None)).unwrap(),
            PgType::Timestamp
        );
        assert_eq!(
            PgType::for_polars(&DataType::UInt32).unwrap().sql_name(),
            "bigint"
        );
        assert_eq!(
            PgType::for_polars(&DataType::UInt64).unwrap().sql_name(),
            "numeric(20,0)"
        );
        let err = PgType::for_polars(&DataType::List(Box::new(DataType::Int64))).unwrap_err();
        assert!(err.contains("convert the column first"), "{err}");
    }
}
