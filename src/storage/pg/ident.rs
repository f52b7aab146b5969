//! Table names: validated by a strict rule, then always quoted.
//!
//! A table name comes from the command line and ends up inside SQL text (COPY
//! and DDL cannot take a table name as a bind parameter). Two independent
//! defences keep it from ever being SQL: the name must match a strict
//! identifier rule (letters, digits and `_`, at most one `.` between schema
//! and table), and it is emitted only through [`quote_ident`]. Quoted names are
//! case-sensitive in Postgres: `Events` and `events` are different tables.

use std::fmt;

use super::PgError;

/// Postgres silently truncates identifiers longer than this (NAMEDATALEN - 1),
/// which could make two different names mean one table.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// A validated `table` or `schema.table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    schema: Option<String>,
    table: String,
}

impl TableName {
    /// Validate `text` as `table` or `schema.table`.
    pub fn parse(text: &str) -> Result<TableName, PgError> {
        let invalid = |reason: String| PgError::InvalidTableName {
            name: text.to_string(),
            reason,
        };
        let parts: Vec<&str> = text.split('.').collect();
        let (schema, table) = match parts.as_slice() {
            [table] => (None, *table),
            [schema, table] => (Some(*schema), *table),
            _ => return Err(invalid("it has more than one `.`".to_string())),
        };
        if let Some(schema) = schema {
            check_part(schema).map_err(|r| invalid(format!("the schema part {r}")))?;
        }
        check_part(table).map_err(|r| invalid(format!("the table part {r}")))?;
        Ok(TableName {
            schema: schema.map(str::to_string),
            table: table.to_string(),
        })
    }

    /// `schema.table` for a schema name read from the catalog (which may not
    /// pass the rule for names typed by users; it is quoted all the same) and
    /// a table name made by recsys itself.
    pub(crate) fn in_catalog_schema(schema: &str, table: &str) -> TableName {
        TableName {
            schema: Some(schema.to_string()),
            table: table.to_string(),
        }
    }

    /// The schema, if one was given.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The table part.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The name as SQL: `"schema"."table"` or `"table"`.
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(&self.table)),
            None => quote_ident(&self.table),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.table),
            None => f.write_str(&self.table),
        }
    }
}

/// Why `part` breaks the identifier rule, phrased to follow "the table part".
fn check_part(part: &str) -> Result<(), String> {
    let Some(first) = part.chars().next() else {
        return Err("is empty".to_string());
    };
    if part.len() > MAX_IDENTIFIER_BYTES {
        return Err(format!(
            "is {} characters long (at most {MAX_IDENTIFIER_BYTES})",
            part.len()
        ));
    }
    if let Some(bad) = part
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(format!("contains {}", describe_char(bad)));
    }
    if first.is_ascii_digit() {
        return Err("starts with a digit".to_string());
    }
    Ok(())
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_string(),
        c if c.is_control() => format!("the control character U+{:04X}", c as u32),
        c => format!("`{c}`"),
    }
}

/// `ident` quoted as a Postgres identifier: wrapped in `"` with inner `"` doubled.
///
/// Used for every name recsys puts into SQL, including column names taken
/// from a file (which may hold spaces or quotes and are still safe this way).
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> String {
        match TableName::parse(text) {
            Err(PgError::InvalidTableName { reason, .. }) => reason,
            other => panic!("`{text}` should be rejected, got {other:?}"),
        }
    }

    #[test]
    fn plain_and_schema_qualified_names_are_quoted() {
        let t = TableName::parse("events").unwrap();
        assert_eq!(t.quoted(), "\"events\"");
        assert_eq!(t.schema(), None);
        let t = TableName::parse("shop_2024.Recs_v2").unwrap();
        assert_eq!(t.quoted(), "\"shop_2024\".\"Recs_v2\"");
        assert_eq!(t.to_string(), "shop_2024.Recs_v2");
        assert_eq!(t.table(), "Recs_v2");
        assert!(TableName::parse("_x").is_ok());
        assert!(TableName::parse(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn hostile_and_malformed_names_are_rejected_with_the_reason() {
        assert_eq!(
            reason("events; DROP TABLE users"),
            "the table part contains `;`"
        );
        assert_eq!(reason("x\" OR \"1"), "the table part contains `\"`");
        assert_eq!(reason("a.b.c"), "it has more than one `.`");
        assert_eq!(reason(""), "the table part is empty");
        assert_eq!(reason(".events"), "the schema part is empty");
        assert_eq!(reason("public."), "the table part is empty");
        assert_eq!(reason("1events"), "the table part starts with a digit");
        assert_eq!(reason("my events"), "the table part contains a space");
        assert_eq!(
            reason("ev\nil"),
            "the table part contains the control character U+000A"
        );
        assert_eq!(reason("événements"), "the table part contains `é`");
        assert_eq!(reason("sch-ema.t"), "the schema part contains `-`");
        assert!(reason(&"a".repeat(64)).contains("64 characters long"));
    }

    #[test]
    fn the_error_names_the_bad_value_and_the_rule() {
        let err = TableName::parse("events; DROP TABLE users").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`events; DROP TABLE users`"), "{text}");
        assert!(text.contains("`schema.table`"), "{text}");
    }

    #[test]
    fn quoting_doubles_inner_quotes() {
        assert_eq!(quote_ident("plain"), "\"plain\"");
        assert_eq!(quote_ident("we\"ird name"), "\"we\"\"ird name\"");
    }
}
