//! A stored row's columns by name, however the row was read: through sqlx ([`AnyRow`]), or
//! by SQLite's group-commit writer, which copies the values out ([`OwnedRow`]) so that they
//! are decoded, and sealed ones opened, outside that single thread. One mapping of a table's
//! columns to a value (e.g. `orders::event_record`) then serves both.

use rusqlite::types::{FromSql, Value, ValueRef};
use sqlx::any::AnyRow;
use sqlx::{Any, Row};

use crate::outbox::claimed_context_name;
use crate::StoreError;

/// A column's value type that both sqlx and rusqlite decode.
pub(crate) trait Column: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> + FromSql {}

impl<T> Column for T where T: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> + FromSql {}

/// A row whose columns are read by name.
pub(crate) trait Columns {
    /// The column `name`, decoded as `T`.
    fn column<T: Column>(&self, name: &str) -> Result<T, StoreError>;
}

impl Columns for AnyRow {
    fn column<T: Column>(&self, name: &str) -> Result<T, StoreError> {
        Ok(self.try_get(name)?)
    }
}

/// The values of one row, copied out of its statement; named by `names`, the statement's
/// result columns in order (a qualified `e.id` is the column `id`).
#[derive(Clone)]
pub(crate) struct OwnedRow {
    names: &'static [&'static str],
    values: Vec<Value>,
}

impl OwnedRow {
    /// Copies `row`, whose statement's result columns are `names`.
    pub(crate) fn read(
        row: &rusqlite::Row<'_>,
        names: &'static [&'static str],
    ) -> rusqlite::Result<Self> {
        let values = (0..names.len())
            .map(|i| row.get::<_, Value>(i))
            .collect::<rusqlite::Result<_>>()?;
        Ok(Self { names, values })
    }
}

impl Columns for OwnedRow {
    fn column<T: Column>(&self, name: &str) -> Result<T, StoreError> {
        let index = self
            .names
            .iter()
            .position(|n| n.rsplit('.').next() == Some(name))
            .ok_or_else(|| StoreError::Corrupt(format!("no column {name:?} was read")))?;
        T::column_result(ValueRef::from(&self.values[index]))
            .map_err(|e| StoreError::Corrupt(format!("column {name:?}: {e}")))
    }
}

/// A claimed job's context (its event and the order's customer), as its claim read it: copied
/// out by SQLite's writer, or the claim's own row on PostgreSQL, whose context columns have
/// the names [`claimed_context_name`] gives.
#[derive(Clone)]
pub(crate) enum ContextRow {
    Owned(OwnedRow),
    Claimed(AnyRow),
}

impl Columns for ContextRow {
    fn column<T: Column>(&self, name: &str) -> Result<T, StoreError> {
        match self {
            Self::Owned(row) => row.column(name),
            Self::Claimed(row) => {
                let claimed = claimed_context_name(name)
                    .ok_or_else(|| StoreError::Corrupt(format!("no column {name:?} was read")))?;
                Ok(row.try_get(claimed)?)
            }
        }
    }
}

/// Shows no values: they may be sealed customer data.
impl std::fmt::Debug for ContextRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Owned(row) => row.fmt(f),
            Self::Claimed(_) => f.write_str("ContextRow::Claimed(..)"),
        }
    }
}

/// Shows the column names only: the values may be sealed customer data.
impl std::fmt::Debug for OwnedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedRow")
            .field("columns", &self.names)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &["e.id", "o.customer_email", "e.price"];

    fn row() -> OwnedRow {
        let conn = rusqlite::Connection::open_in_memory().expect("in memory");
        conn.query_row("SELECT 7, NULL, '12.50'", [], |r| OwnedRow::read(r, NAMES))
            .expect("one row")
    }

    #[test]
    fn columns_are_read_by_their_unqualified_names() {
        let row = row();
        assert_eq!(row.column::<i64>("id").expect("id"), 7);
        assert_eq!(
            row.column::<Option<String>>("customer_email")
                .expect("email"),
            None
        );
        assert_eq!(row.column::<String>("price").expect("price"), "12.50");
    }

    #[test]
    fn a_missing_column_or_a_wrong_type_is_a_clear_error() {
        let row = row();
        let missing = row.column::<i64>("retail_price").expect_err("not read");
        assert!(missing.to_string().contains("retail_price"), "{missing}");
        let wrong = row
            .column::<i64>("price")
            .expect_err("text, not an integer");
        assert!(wrong.to_string().contains("price"), "{wrong}");
        assert!(!format!("{row:?}").contains("12.50"), "{row:?}");
    }
}
