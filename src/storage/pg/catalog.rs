//! What the database knows about a table: whether it exists, its columns, its size.
//!
//! Names are looked up with `to_regclass($1)`, a bound parameter, so the
//! catalog queries never carry user text in their SQL; the name goes in already
//! quoted, so `Events` means the table `"Events"`, not `events`.

use anyhow::{Context, Result};
use postgres::GenericClient;

use super::{sql_error, PgError, PgType, TableName};

/// A table (or view) as found in the catalog.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// The name it was looked up by.
    pub name: TableName,
    /// The schema it was found in (through `search_path` when the name has none).
    pub schema: String,
    /// What kind of relation it is: `table`, `view`, …
    pub kind: String,
    /// Its columns, in order.
    pub columns: Vec<ColumnInfo>,
}

/// One column of a table.
#[derive(Debug, Clone)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// The type as Postgres prints it, e.g. `numeric(12,2)`.
    pub sql_type: String,
    /// The type as recsys moves it.
    pub kind: PgType,
}

impl TableInfo {
    /// True for ordinary and partitioned tables, the relations `drop` and
    /// `push --if-exists replace` may remove.
    pub fn is_table(&self) -> bool {
        self.kind == "table" || self.kind == "partitioned table"
    }
}

/// Look `table` up; a missing table is [`PgError::TableMissing`].
pub fn lookup_table(client: &mut impl GenericClient, table: &TableName) -> Result<TableInfo> {
    find_table(client, table)?.ok_or_else(|| {
        let hint = similar_names(client, table)
            .map(|names| match names.as_slice() {
                [] => String::new(),
                names => format!(
                    " (names are case-sensitive and schema-qualified; did you mean {}?)",
                    names.join(" or ")
                ),
            })
            .unwrap_or_default();
        PgError::TableMissing {
            table: table.to_string(),
            hint,
        }
        .into()
    })
}

/// Look `table` up; `None` when it does not exist.
pub(super) fn find_table(
    client: &mut impl GenericClient,
    table: &TableName,
) -> Result<Option<TableInfo>> {
    let found = client
        .query_opt(
            "SELECT c.oid, CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' \
             WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' \
             WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' ELSE 'relation' END, n.nspname::text \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = pg_catalog.to_regclass($1)",
            &[&table.quoted()],
        )
        .map_err(sql_error)
        .with_context(|| format!("looking up table {table}"))?;
    let Some(row) = found else {
        return Ok(None);
    };
    let oid: u32 = row.get(0);
    let kind: String = row.get(1);
    let schema: String = row.get(2);
    let columns = client
        .query(
            "SELECT a.attname::text, a.atttypid, a.atttypmod, \
             pg_catalog.format_type(a.atttypid, a.atttypmod) \
             FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&oid],
        )
        .map_err(sql_error)
        .with_context(|| format!("reading the columns of {table}"))?
        .iter()
        .map(|row| {
            let sql_type: String = row.get(3);
            ColumnInfo {
                name: row.get(0),
                kind: PgType::from_catalog(row.get(1), row.get(2), &sql_type),
                sql_type,
            }
        })
        .collect();
    Ok(Some(TableInfo {
        name: table.clone(),
        schema,
        kind,
        columns,
    }))
}

/// Tables whose name matches `table` but for case or schema, to suggest.
fn similar_names(client: &mut impl GenericClient, table: &TableName) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE lower(c.relname) = lower($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') \
         AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
         ORDER BY 1, 2 LIMIT 5",
            &[&table.table()],
        )
        .map_err(sql_error)?;
    Ok(rows
        .iter()
        .map(|row| format!("{}.{}", row.get::<_, String>(0), row.get::<_, String>(1)))
        .filter(|name| *name != table.to_string())
        .collect())
}

/// The exact number of rows (a full scan: `count(*)`).
pub fn count_rows(client: &mut impl GenericClient, table: &TableName) -> Result<u64> {
    let row = client
        .query_one(&format!("SELECT count(*) FROM {}", table.quoted()), &[])
        .map_err(sql_error)
        .with_context(|| format!("counting the rows of {table}"))?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Drop `table`, which must be an ordinary table (not a view).
///
/// Without CASCADE: a view built on the table makes this fail, rather than
/// silently taking the view with it.
pub fn drop_table(client: &mut postgres::Client, table: &TableName) -> Result<()> {
    let mut transaction = client.transaction().map_err(sql_error)?;
    let info = lookup_table(&mut transaction, table)?;
    if !info.is_table() {
        return Err(PgError::NotATable {
            table: table.to_string(),
            kind: info.kind,
        }
        .into());
    }
    transaction
        .batch_execute(&format!("DROP TABLE {}", table.quoted()))
        .map_err(sql_error)
        .with_context(|| format!("dropping table {table}"))?;
    transaction
        .commit()
        .map_err(sql_error)
        .with_context(|| format!("dropping table {table}"))
}
