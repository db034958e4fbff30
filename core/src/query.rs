//! Queries over one collection: field filters, ordering and paging, compiled to SQL whose field
//! expressions match the schema's expression indexes exactly, so SQLite uses them.

use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;
use serde_json::Value;
use tandem_protocol::{Collection, FieldType, Schema};

use crate::error::{Error, Result};
use crate::records::{self, RecordRow, COLUMNS};
use crate::schema::{self, field_expr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub field: String,
    pub op: FilterOp,
    /// The value to compare with; for [`FilterOp::In`], an array of values.
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub field: String,
    pub descending: bool,
}

/// Filters (all must hold), ordering (then by id, so results are stable) and paging.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub filters: Vec<Filter>,
    pub order: Vec<Order>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    /// Only the records of this space (`records_by_space`); `None` reads every space's records
    /// of a space collection (and is the only value that matches user and public records).
    pub space_id: Option<String>,
}

/// A checked query, ready to run any number of times (observers re-run it after every commit).
#[derive(Debug, Clone)]
pub struct CompiledQuery {
    select_sql: String,
    count_sql: String,
    params: Vec<SqlValue>,
}

impl CompiledQuery {
    pub fn compile(schema: &Schema, collection: &str, query: &Query) -> Result<Self> {
        let declared = schema::declared(schema, collection)?;
        let mut conditions = vec![
            format!("collection = '{collection}'"),
            "deleted = 0".to_string(),
        ];
        let mut params = Vec::new();
        if let Some(space) = &query.space_id {
            params.push(SqlValue::Text(space.clone()));
            conditions.push("space_id = ?".to_string());
        }
        for filter in &query.filters {
            let kind = field_type(declared, collection, &filter.field)?;
            conditions.push(condition(collection, kind, filter, &mut params)?);
        }
        let mut order_terms = Vec::new();
        for order in &query.order {
            field_type(declared, collection, &order.field)?;
            let direction = if order.descending { "DESC" } else { "ASC" };
            order_terms.push(format!("{} {direction}", field_expr(&order.field)));
        }
        order_terms.push("id ASC".to_string());
        let where_sql = conditions.join(" AND ");
        let mut select_sql = format!(
            "SELECT {COLUMNS} FROM records WHERE {where_sql} ORDER BY {}",
            order_terms.join(", ")
        );
        match (query.limit, query.offset) {
            (None, None) => {}
            (limit, offset) => {
                let limit = limit.map_or(-1, |l| l.min(i64::MAX as u64) as i64);
                let offset = offset.unwrap_or(0).min(i64::MAX as u64) as i64;
                select_sql.push_str(&format!(" LIMIT {limit} OFFSET {offset}"));
            }
        }
        let count_sql = format!("SELECT count(*) FROM records WHERE {where_sql}");
        Ok(Self {
            select_sql,
            count_sql,
            params,
        })
    }

    /// The live record `collection/id`: at most one row, found by the primary key.
    pub fn record(schema: &Schema, collection: &str, id: &str) -> Result<Self> {
        schema::declared(schema, collection)?;
        let where_sql = format!("collection = '{collection}' AND id = ?1 AND deleted = 0");
        Ok(Self {
            select_sql: format!("SELECT {COLUMNS} FROM records WHERE {where_sql}"),
            count_sql: format!("SELECT count(*) FROM records WHERE {where_sql}"),
            params: vec![SqlValue::Text(id.to_string())],
        })
    }

    pub fn rows(&self, conn: &Connection) -> Result<Vec<RecordRow>> {
        let mut stmt = conn.prepare_cached(&self.select_sql)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(&self.params), records::from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn count(&self, conn: &Connection) -> Result<u64> {
        let mut stmt = conn.prepare_cached(&self.count_sql)?;
        let n: i64 = stmt.query_row(rusqlite::params_from_iter(&self.params), |r| r.get(0))?;
        Ok(n as u64)
    }

    /// SQLite's plan for the select, for tests that prove an index is used.
    pub fn explain(&self, conn: &Connection) -> Result<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", self.select_sql))?;
        let lines = stmt
            .query_map(rusqlite::params_from_iter(&self.params), |r| {
                r.get::<_, String>(3)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(lines.join("\n"))
    }
}

fn field_type(declared: &Collection, collection: &str, field: &str) -> Result<FieldType> {
    declared
        .fields
        .get(field)
        .map(|f| f.kind)
        .ok_or_else(|| Error::invalid(format!("{collection}.{field}: not declared in the schema")))
}

fn condition(
    collection: &str,
    kind: FieldType,
    filter: &Filter,
    params: &mut Vec<SqlValue>,
) -> Result<String> {
    let expr = field_expr(&filter.field);
    let place = format!("{collection}.{}", filter.field);
    if matches!(kind, FieldType::Array | FieldType::Object) {
        return Err(Error::invalid(format!(
            "{place}: {kind} fields cannot be filtered on"
        )));
    }
    if filter.op == FilterOp::In {
        let Value::Array(values) = &filter.value else {
            return Err(Error::invalid(format!(
                "{place}: `in` takes a JSON array of values"
            )));
        };
        if values.is_empty() {
            return Ok("0".to_string()); // nothing is in an empty set
        }
        for value in values {
            params.push(bind(&place, kind, value)?);
        }
        let slots = vec!["?"; values.len()].join(", ");
        return Ok(format!("{expr} IN ({slots})"));
    }
    if filter.value.is_null() {
        return match filter.op {
            FilterOp::Eq => Ok(format!("{expr} IS NULL")),
            FilterOp::Ne => Ok(format!("{expr} IS NOT NULL")),
            _ => Err(Error::invalid(format!(
                "{place}: null can only be compared with = or !="
            ))),
        };
    }
    params.push(bind(&place, kind, &filter.value)?);
    Ok(match filter.op {
        FilterOp::Eq => format!("{expr} = ?"),
        // A record without the field is "not equal" too, as an app developer would expect.
        FilterOp::Ne => format!("{expr} IS NOT ?"),
        FilterOp::Lt => format!("{expr} < ?"),
        FilterOp::Le => format!("{expr} <= ?"),
        FilterOp::Gt => format!("{expr} > ?"),
        FilterOp::Ge => format!("{expr} >= ?"),
        FilterOp::In => unreachable!("handled above"),
    })
}

/// Converts a filter value to what `json_extract` yields for a field of that type, refusing
/// values of another type (SQLite would silently compare them as unequal).
fn bind(place: &str, kind: FieldType, value: &Value) -> Result<SqlValue> {
    let mismatch = || Error::invalid(format!("{place}: filter value must be of type {kind}"));
    Ok(match (kind, value) {
        (FieldType::String, Value::String(s)) => SqlValue::Text(s.clone()),
        (FieldType::Boolean, Value::Bool(b)) => SqlValue::Integer(i64::from(*b)),
        (FieldType::Integer, Value::Number(n)) if n.is_i64() => {
            SqlValue::Integer(n.as_i64().unwrap_or_default())
        }
        (FieldType::Number, Value::Number(n)) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().ok_or_else(mismatch)?),
        },
        _ => return Err(mismatch()),
    })
}
