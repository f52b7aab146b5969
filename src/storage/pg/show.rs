//! `pg show`: a table's first rows, row count and column types, for a person to read.
//!
//! Values are fetched in Postgres's own text form (the simple-query
//! protocol), so every type prints as `psql` would print it, including types
//! recsys cannot load. Cells are cut to a readable width and control
//! characters escaped, so one odd value cannot break the alignment.

use std::fmt;

use anyhow::{Context, Result};
use postgres::{Client, IsolationLevel, SimpleQueryMessage};

use super::catalog::{count_rows, lookup_table, TableInfo};
use super::{sql_error, PgType, TableName};

/// Longest cell shown, in characters; longer values end in `…`.
const MAX_CELL_CHARS: usize = 40;

/// The first rows of a table, ready to print.
#[derive(Debug, Clone)]
pub struct TablePreview {
    /// The table and its columns.
    pub info: TableInfo,
    /// Rows in the whole table.
    pub rows: u64,
    /// The first rows, in Postgres's text form (`None` is NULL).
    pub cells: Vec<Vec<Option<String>>>,
}

/// The first `limit` rows of `table`, its row count and column types.
pub fn show_table(client: &mut Client, table: &TableName, limit: u64) -> Result<TablePreview> {
    // One snapshot, so the count and the rows agree.
    let mut transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(sql_error)?;
    let info = lookup_table(&mut transaction, table)?;
    let rows = count_rows(&mut transaction, table)?;
    let messages = transaction
        .simple_query(&format!("SELECT * FROM {} LIMIT {limit}", table.quoted()))
        .map_err(sql_error)
        .with_context(|| format!("reading the first rows of {table}"))?;
    let cells = messages
        .iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    transaction.commit().map_err(sql_error)?;
    Ok(TablePreview { info, rows, cells })
}

impl fmt::Display for TablePreview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let columns = &self.info.columns;
        writeln!(
            f,
            "{} ({}): {} rows, {} columns",
            self.info.name,
            self.info.kind,
            self.rows,
            columns.len()
        )?;
        writeln!(f)?;
        let types: Vec<Vec<Option<String>>> = columns
            .iter()
            .map(|c| vec![Some(c.name.clone()), Some(c.sql_type.clone())])
            .collect();
        write_grid(f, &["column", "type"], &[false, false], &types)?;
        writeln!(f)?;
        let header: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let right: Vec<bool> = columns.iter().map(|c| is_numeric(&c.kind)).collect();
        write_grid(f, &header, &right, &self.cells)?;
        writeln!(f, "({} of {} rows)", self.cells.len(), self.rows)
    }
}

fn is_numeric(kind: &PgType) -> bool {
    matches!(
        kind,
        PgType::Int2
            | PgType::Int4
            | PgType::Int8
            | PgType::Float4
            | PgType::Float8
            | PgType::Numeric(_)
    )
}

/// A psql-style grid: a header, a rule, then the rows; numbers right-aligned.
fn write_grid(
    f: &mut fmt::Formatter<'_>,
    header: &[&str],
    right_aligned: &[bool],
    rows: &[Vec<Option<String>>],
) -> fmt::Result {
    let shown: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| display_cell(cell.as_deref()))
                .collect()
        })
        .collect();
    let header: Vec<String> = header.iter().map(|h| display_cell(Some(h))).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            shown
                .iter()
                .map(|row| row.get(i).map_or(0, |c| c.chars().count()))
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String], align_right: &dyn Fn(usize) -> bool| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let pad = widths[i].saturating_sub(cell.chars().count());
                if align_right(i) {
                    format!(" {}{cell} ", " ".repeat(pad))
                } else {
                    format!(" {cell}{} ", " ".repeat(pad))
                }
            })
            .collect::<Vec<_>>()
            .join("|")
            .trim_end()
            .to_string()
    };
    writeln!(f, "{}", line(&header, &|_| false))?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    writeln!(f, "{}", rule.join("+"))?;
    for row in &shown {
        writeln!(
            f,
            "{}",
            line(row, &|i| right_aligned.get(i).copied().unwrap_or(false))
        )?;
    }
    Ok(())
}

/// A value as shown: NULL spelled out, control characters escaped, long text cut.
fn display_cell(value: Option<&str>) -> String {
    let Some(value) = value else {
        return "NULL".to_string();
    };
    let mut out = String::new();
    for (count, c) in value.chars().enumerate() {
        if count == MAX_CELL_CHARS {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::pg::ColumnInfo;

    #[test]
    fn the_preview_is_aligned_with_numbers_on_the_right() {
        let preview = TablePreview {
            info: TableInfo {
                name: TableName::parse("shop.events").unwrap(),
                schema: "shop".into(),
                kind: "table".into(),
                columns: vec![
                    ColumnInfo {
                        name: "itemid".into(),
                        sql_type: "bigint".into(),
                        kind: PgType::Int8,
                    },
                    ColumnInfo {
                        name: "event".into(),
                        sql_type: "text".into(),
                        kind: PgType::Text,
                    },
                ],
            },
            rows: 1234,
            cells: vec![
                vec![Some("5".into()), Some("view".into())],
                vec![Some("123456".into()), None],
                vec![Some("7".into()), Some("two\nlines".into())],
            ],
        };
        let text = preview.to_string();
        let expected = "\
shop.events (table): 1234 rows, 2 columns

 column | type
--------+--------
 itemid | bigint
 event  | text

 itemid | event
--------+------------
      5 | view
 123456 | NULL
      7 | two\\nlines
(3 of 1234 rows)
";
        assert_eq!(text, expected, "got:\n{text}");
    }

    #[test]
    fn long_cells_are_cut() {
        let long = "x".repeat(100);
        let shown = display_cell(Some(&long));
        assert_eq!(shown.chars().count(), MAX_CELL_CHARS + 1);
        assert!(shown.ends_with('…'));
    }
}
