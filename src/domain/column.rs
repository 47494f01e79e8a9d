//! The columns of the call history (spec §2), as the page shows them and exports write them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{FieldError, Lang, Role};

/// One column of the call history, in the reference product's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    Time,
    Type,
    From,
    To,
    Operator,
    Queue,
    RingDuration,
    TalkDuration,
    Recording,
    Price,
    Scenario,
    Campaign,
    Result,
    CompletionCode,
    Attempts,
    Tags,
    Topics,
    Notes,
}

text_enum!(Column {
    Time => "time",
    Type => "type",
    From => "from",
    To => "to",
    Operator => "operator",
    Queue => "queue",
    RingDuration => "ring_duration",
    TalkDuration => "talk_duration",
    Recording => "recording",
    Price => "price",
    Scenario => "scenario",
    Campaign => "campaign",
    Result => "result",
    CompletionCode => "completion_code",
    Attempts => "attempts",
    Tags => "tags",
    Topics => "topics",
    Notes => "notes",
});

impl Column {
    /// The header, in the reference product's words (spec §2).
    pub fn label(self, lang: Lang) -> &'static str {
        use Column::*;
        let (en, ru) = match self {
            Time => ("Time", "Время"),
            Type => ("Type", "Тип"),
            From => ("From", "Звонок с"),
            To => ("To", "Звонок к"),
            Operator => ("Operator", "Оператор"),
            Queue => ("Queue", "Очередь"),
            RingDuration => ("Ring duration", "Длительность дозвона"),
            TalkDuration => ("Talk duration", "Длительность разговора"),
            Recording => ("Recording", "Запись"),
            Price => ("Price", "Цена"),
            Scenario => ("Scenario", "Сценарий"),
            Campaign => ("Campaign", "Кампания"),
            Result => ("Attempt result", "Результат попытки"),
            CompletionCode => ("Completion code", "Код завершения"),
            Attempts => ("Attempts", "Попытки"),
            Tags => ("Tags", "Теги"),
            Topics => ("Topics", "Тематики"),
            Notes => ("Notes", "Заметки"),
        };
        match lang {
            Lang::En => en,
            Lang::Ru => ru,
        }
    }

    /// Whether a role may see this column at all (the restricted view has no Price).
    pub fn visible_to(self, role: Role) -> bool {
        self != Column::Price || role.sees_price()
    }

    /// Every column the role may see, in order: the view of someone who never chose.
    pub fn all_for(role: Role) -> Vec<Column> {
        Column::ALL.iter().copied().filter(|c| c.visible_to(role)).collect()
    }

    /// A choice as a role sees it now: what the role may not see is left out (a choice made
    /// under a wider role); nothing left means the role's defaults.
    pub fn kept_for(chosen: impl IntoIterator<Item = Column>, role: Role) -> Vec<Column> {
        let kept: Vec<Column> = chosen.into_iter().filter(|c| c.visible_to(role)).collect();
        if kept.is_empty() {
            Column::all_for(role)
        } else {
            kept
        }
    }

    /// A chosen list of column codes, checked: known, not repeated, allowed to the role, and
    /// at least one. `field` names the input in errors.
    pub fn parse_choice<S: AsRef<str>>(codes: &[S], role: Role, field: &str) -> Result<Vec<Column>, FieldError> {
        let mut columns = Vec::with_capacity(codes.len());
        for code in codes {
            let code = code.as_ref().trim();
            let column = Column::parse(code).ok_or_else(|| {
                let known: Vec<&str> = Column::ALL.iter().map(|c| c.code()).collect();
                FieldError::new(
                    field,
                    format!("unknown column {code:?}; columns are {}", known.join(", ")),
                )
            })?;
            if !column.visible_to(role) {
                return Err(FieldError::new(
                    field,
                    format!("the column {code} is not available to your role"),
                ));
            }
            if columns.contains(&column) {
                return Err(FieldError::new(field, format!("the column {code} is listed twice")));
            }
            columns.push(column);
        }
        if columns.is_empty() {
            return Err(FieldError::new(field, "choose at least one column"));
        }
        Ok(columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eighteen_columns_in_reference_order_with_both_labels() {
        let codes: Vec<&str> = Column::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(
            codes,
            [
                "time",
                "type",
                "from",
                "to",
                "operator",
                "queue",
                "ring_duration",
                "talk_duration",
                "recording",
                "price",
                "scenario",
                "campaign",
                "result",
                "completion_code",
                "attempts",
                "tags",
                "topics",
                "notes"
            ]
        );
        assert_eq!(Column::Result.label(Lang::Ru), "Результат попытки");
        assert_eq!(Column::From.label(Lang::Ru), "Звонок с");
        assert_eq!(Column::RingDuration.label(Lang::En), "Ring duration");
    }

    #[test]
    fn restricted_roles_never_get_price() {
        assert_eq!(Column::all_for(Role::Manager).len(), 18);
        let restricted = Column::all_for(Role::Supervisor);
        assert_eq!(restricted.len(), 17);
        assert!(!restricted.contains(&Column::Price));
        let err = Column::parse_choice(&["time", "price"], Role::Operator, "columns").unwrap_err();
        assert_eq!(err.field, "columns");
        assert!(err.message.contains("price"), "{}", err.message);
    }

    #[test]
    fn a_choice_is_checked() {
        assert_eq!(
            Column::parse_choice(&["to", " time"], Role::Owner, "columns").unwrap(),
            vec![Column::To, Column::Time]
        );
        for bad in [vec!["time", "time"], vec!["duration"], vec![]] {
            let err = Column::parse_choice(&bad, Role::Owner, "columns").unwrap_err();
            assert_eq!(err.field, "columns", "{bad:?}");
        }
    }
}
