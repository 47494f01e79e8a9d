//! Each user's own view: visible columns, language, time zone.

use crate::store::db::{params, Connection, OptionalExtension};

use super::StoreError;
use crate::domain::{Column, Lang, Role, UserId};

/// What a user chose; `None` where they never chose (the defaults apply).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chosen {
    pub columns: Option<Vec<Column>>,
    pub lang: Option<Lang>,
    pub timezone: Option<String>,
}

impl Chosen {
    /// The columns this role sees now, in the chosen order. A choice made under a wider role
    /// loses what the current role may not see; nothing left means the role's defaults.
    pub fn columns_for(&self, role: Role) -> Vec<Column> {
        Column::kept_for(self.columns.iter().flatten().copied(), role)
    }
}

/// A change: `None` keeps, `Some(None)` returns to the default, `Some(Some(v))` sets.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub columns: Option<Option<Vec<Column>>>,
    pub lang: Option<Option<Lang>>,
    pub timezone: Option<Option<String>>,
}

pub fn get(conn: &Connection, user: UserId) -> Result<Chosen, StoreError> {
    let row = conn
        .prepare_cached("SELECT columns, lang, timezone FROM user_preferences WHERE user_id = ?")?
        .query_row([user.0], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .optional()?;
    let Some((columns, lang, timezone)) = row else {
        return Ok(Chosen::default());
    };
    Ok(Chosen {
        // Written only by `set` from parsed values; a code a later version dropped is skipped.
        columns: columns.map(|s| s.split(',').filter_map(Column::parse).collect()),
        lang: lang.as_deref().and_then(Lang::parse),
        timezone,
    })
}

/// Applies a change and returns what is stored afterwards.
pub fn set(conn: &Connection, user: UserId, change: Change) -> Result<Chosen, StoreError> {
    let mut now = get(conn, user)?;
    if let Some(columns) = change.columns {
        now.columns = columns;
    }
    if let Some(lang) = change.lang {
        now.lang = lang;
    }
    if let Some(timezone) = change.timezone {
        now.timezone = timezone;
    }
    let columns = now
        .columns
        .as_ref()
        .map(|cs| cs.iter().map(|c| c.code()).collect::<Vec<_>>().join(","));
    conn.prepare_cached(
        "INSERT INTO user_preferences (user_id, columns, lang, timezone) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (user_id) DO UPDATE SET columns = ?2, lang = ?3, timezone = ?4",
    )?
    .execute(params![user.0, columns, now.lang.map(|l| l.code()), now.timezone])?;
    Ok(now)
}
